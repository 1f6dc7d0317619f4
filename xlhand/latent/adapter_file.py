"""Adapter files: one onboarded hand's encoder/decoder, bound to the fingerprint of the space it was fitted in.

Format (``.safetensors``): tensors ``<hand>.<parameter>`` and metadata ``xlhand`` JSON with ``format``
("xlhand-adapter"), ``format_version``, ``space_fingerprint``, ``latent_dim``, ``hidden``, ``hand`` (name) and
``record`` (joint names, limits, fingers, kinematics hash, source), ``fingerprint`` (of the adapter's own weights),
``report`` (summary quality figures) and ``provenance``.
"""

from __future__ import annotations

import json
from pathlib import Path

from xlhand._util.atomic import atomic_path
from xlhand.errors import XlhandError
from xlhand.hand.model import Hand
from xlhand.latent.adapter import Adapter
from xlhand.latent.space import (
    FORMAT_VERSION,
    Space,
    check_hand_matches,
    fingerprint_tensors,
    hand_record,
    read_safetensors,
)

ADAPTER_FORMAT = "xlhand-adapter"


def save_adapter(path: str | Path, space: Space, name: str, source: dict | None = None, report: dict | None = None,
                 provenance: dict | None = None) -> Path:
    """Write hand ``name``'s adapter from ``space`` atomically, bound to the space's base fingerprint."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = space.tensors([name])
    meta = {
        "format": ADAPTER_FORMAT,
        "format_version": FORMAT_VERSION,
        "space_fingerprint": space.fingerprint,
        "latent_dim": space.latent_dim,
        "hidden": list(space.hidden),
        "hand": name,
        "record": hand_record(space.hand(name), source),
        "fingerprint": fingerprint_tensors(tensors),
        "report": report or {},
        "provenance": provenance or {},
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"xlhand": json.dumps(meta)})
    return path


def read_adapter(path: str | Path) -> tuple[dict, dict]:
    """(tensors, metadata) of an adapter file, checked for format and integrity."""
    path = Path(path)
    tensors, meta = read_safetensors(path)
    if meta.get("format") != ADAPTER_FORMAT:
        raise XlhandError(f"not an xlhand adapter (format {meta.get('format')!r})", path)
    if meta.get("format_version") != FORMAT_VERSION:
        raise XlhandError(f"adapter format version {meta.get('format_version')!r} is not supported", path)
    for key in ("space_fingerprint", "hand", "record", "fingerprint", "latent_dim", "hidden"):
        if key not in meta:
            raise XlhandError(f"malformed adapter metadata: no {key!r}", path)
    if fingerprint_tensors(tensors) != meta["fingerprint"]:
        raise XlhandError("the adapter's weights do not match its recorded fingerprint; the file was modified", path)
    return tensors, meta


def plug_adapter(space: Space, path: str | Path, hand: Hand) -> None:
    """Add the adapter at ``path`` for ``hand`` to ``space`` after checking fingerprint and kinematics."""
    path = Path(path)
    tensors, meta = read_adapter(path)
    check_compatible(meta, space, path)
    name = meta["hand"]
    check_hand_matches(hand, name, meta["record"], path)
    adapter = Adapter(hand.dof, space.latent_dim, space.hidden)
    prefix = f"{name}."
    try:
        adapter.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}, strict=True)
    except RuntimeError as exc:
        raise XlhandError(f"adapter weights do not fit hand {name!r} ({str(exc).splitlines()[0]})", path) from None
    adapter.requires_grad_(False)
    space.adapters[name] = adapter
    space.hands_by_name[name] = hand
    space.sources[name] = meta["record"].get("source", {})


def check_compatible(meta: dict, space: Space, path: Path) -> None:
    if meta["space_fingerprint"] != space.fingerprint:
        raise XlhandError(
            f"the adapter was fitted to space {meta['space_fingerprint'][:12]}, not this one "
            f"({space.fingerprint[:12]}); onboard the hand again into this space",
            path,
        )
    if meta["hand"] in space.adapters:
        raise XlhandError(f"the space already has an adapter for hand {meta['hand']!r}", path)
