"""The shared latent space: per-hand encoder/decoder adapters and their safetensors file format.

Joints are normalised to [-1, 1] by each hand's limits. An adapter's encoder maps normalised joints to the mean
and log-variance of a ``latent_dim`` Gaussian; its decoder maps a latent to normalised joints through ``tanh``, so
every decode is within the joint limits.

File format (``.safetensors``): tensors ``<hand>.<parameter>`` (float32) and one metadata entry ``xlhand`` holding
JSON: ``format`` ("xlhand-space"), ``format_version``, ``latent_dim``, ``hidden``, ``loss`` (the loss settings),
``adapters`` (per hand: joint names, limits, fingers, kinematics hash, where its kinematics come from),
``fingerprint`` (sha256 of the weights, see :func:`fingerprint_tensors`) and ``provenance`` (how it was made).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from xlhand._util.atomic import atomic_path
from xlhand.errors import XlhandError
from xlhand.hand.model import Hand
from xlhand.latent.adapter import HIDDEN, LATENT_DIM, Adapter
from xlhand.registry import load_hand

FORMAT = "xlhand-space"


FORMAT_VERSION = 1


SPACES_DIR = Path(__file__).parent / "spaces"


DEFAULT_SPACE = "default"


@dataclass(frozen=True)
class LossSettings:
    """Weights of the paper's losses (Eq. 1-4); reference values, with the paper's KL weight."""

    rec: float = 1.0  # reconstruction, MSE in normalised joint units
    dis: float = 2000.0  # pinch distance, (m)^-2
    dir: float = 5.0  # pinch direction, 1 - cos
    dis_exp: float = 12.0  # pinch emphasis exp(-dis_exp * |d_source|), 1/m
    kl: float = 1e-5  # KL to N(0, I)


def fingerprint_tensors(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over sorted tensor names, dtypes, shapes and bytes: identifies frozen weights exactly."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous().cpu()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def hand_record(hand: Hand, source: dict | None = None) -> dict:
    """What a space file stores about the hand an adapter belongs to."""
    return {
        "joint_names": list(hand.joint_names),
        "lower": [float(v) for v in hand.lower],
        "upper": [float(v) for v in hand.upper],
        "fingers": list(hand.fingers),
        "kinematics_hash": hand.kinematics_hash,
        "source": source or {"registered": hand.name},
    }


HandResolver = Callable[[str, dict], Hand]


def registered_hand(name: str, record: dict) -> Hand:
    """Default resolver: the installed hand registered under ``name``."""
    return load_hand(name)


@dataclass(eq=False)
class Space:
    """A latent space: adapters for several hands sharing one ``latent_dim``.

    ``encode(hand, q)`` and ``decode(hand, z)`` take and return joint values in radians/metres.
    """

    adapters: dict[str, Adapter]
    hands_by_name: dict[str, Hand]
    latent_dim: int = LATENT_DIM
    hidden: tuple[int, ...] = HIDDEN
    loss: LossSettings = field(default_factory=LossSettings)
    provenance: dict = field(default_factory=dict)
    path: Path | None = None
    sources: dict[str, dict] = field(default_factory=dict)
    base_hands: list[str] | None = None  # the frozen base the fingerprint covers; plugged adapters are extra

    def __post_init__(self):
        if self.base_hands is None:
            self.base_hands = list(self.adapters)

    @classmethod
    def new(cls, hands: list[Hand], latent_dim: int = LATENT_DIM, hidden=HIDDEN, loss: LossSettings | None = None,
            seed: int = 0) -> "Space":
        """Freshly initialised adapters for ``hands`` (deterministic for ``seed``)."""
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            adapters = {h.name: Adapter(h.dof, latent_dim, hidden) for h in hands}
        finally:
            torch.random.set_rng_state(gen_state)
        return cls(adapters, {h.name: h for h in hands}, latent_dim, tuple(hidden), loss or LossSettings())

    @property
    def hands(self) -> list[str]:
        return list(self.adapters)

    def hand(self, name: str) -> Hand:
        if name not in self.hands_by_name:
            raise XlhandError(f"hand {name!r} is not in this space (hands: {', '.join(self.hands)})", self.path)
        return self.hands_by_name[name]

    def adapter(self, name: str) -> Adapter:
        self.hand(name)
        return self.adapters[name]

    def encode(self, hand: str, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``q (B, dof)`` joint values -> ``(mean, logvar)`` each ``(B, latent_dim)``."""
        h = self.hand(hand)
        return self.adapters[hand].encode(h.normalize(q.to(torch.float32)))

    def decode(self, hand: str, z: torch.Tensor) -> torch.Tensor:
        """``z (B, latent_dim)`` -> joint values ``(B, dof)`` within the hand's limits."""
        h = self.hand(hand)
        return h.denormalize(self.adapters[hand].decode(z.to(torch.float32)))

    def tensors(self, hands: list[str] | None = None) -> dict[str, torch.Tensor]:
        out = {}
        for name in hands or self.hands:
            for key, value in self.adapters[name].state_dict().items():
                out[f"{name}.{key}"] = value.detach().to(torch.float32).contiguous()
        return out

    @property
    def fingerprint(self) -> str:
        """sha256 of the base adapters' weights (plugged adapters do not change it)."""
        return fingerprint_tensors(self.tensors(self.base_hands))

    def metadata(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "latent_dim": self.latent_dim,
            "hidden": list(self.hidden),
            "loss": asdict(self.loss),
            "adapters": {n: hand_record(self.hands_by_name[n], self.sources.get(n)) for n in self.hands},
            "fingerprint": fingerprint_tensors(self.tensors()),
            "provenance": self.provenance,
        }

    def save(self, path: str | Path) -> Path:
        """Write the space atomically to ``path`` (safetensors + JSON metadata)."""
        from safetensors.torch import save_file

        path = Path(path)
        with atomic_path(path) as tmp:
            save_file(self.tensors(), str(tmp), metadata={"xlhand": json.dumps(self.metadata())})
        return path


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and the parsed ``xlhand`` metadata of a safetensors file; one-line errors for bad files."""
    from safetensors import safe_open

    if not path.is_file():
        raise XlhandError("no such file", path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # SafetensorError, OSError, ValueError on truncated/corrupt headers
        raise XlhandError(f"not a readable safetensors file ({' '.join(str(exc).split())[:200]})", path) from None
    if "xlhand" not in raw:
        raise XlhandError("a safetensors file without xlhand metadata; not an xlhand space or adapter", path)
    try:
        meta = json.loads(raw["xlhand"])
    except json.JSONDecodeError as exc:
        raise XlhandError(f"xlhand metadata is not valid JSON ({exc.msg})", path) from None
    if not isinstance(meta, dict):
        raise XlhandError("xlhand metadata is not a JSON object", path)
    return tensors, meta


def shipped_spaces() -> dict[str, Path]:
    """Spaces that ship in the package, by name."""
    return {p.stem: p for p in sorted(SPACES_DIR.glob("*.safetensors"))}


def resolve_space_path(name_or_path: str | Path | None) -> Path:
    if name_or_path is None:
        name_or_path = DEFAULT_SPACE
    text = str(name_or_path)
    shipped = shipped_spaces()
    if text in shipped:
        return shipped[text]
    path = Path(text)
    if path.is_dir():
        return path
    if not path.exists():
        if "/" not in text and not text.endswith(".safetensors"):
            known = ", ".join(shipped) or "none"
            raise XlhandError(f"no space named {text!r} (shipped: {known}) and no such file")
        raise XlhandError("no such file", path)
    return path


def check_format(meta: dict, path: Path, fmt: str, version: int, what: str) -> None:
    """One-line errors for a file of another format, or of a format version this xlhand does not read."""
    if meta.get("format") != fmt:
        raise XlhandError(f"not an xlhand {what} (format {meta.get('format')!r})", path)
    if meta.get("format_version") != version:
        raise XlhandError(f"{what} format version {meta.get('format_version')!r} is not supported "
                          f"(this xlhand reads version {version})", path)


def space_from_file(path: Path, resolver: HandResolver) -> Space:
    tensors, meta = read_safetensors(path)
    check_format(meta, path, FORMAT, FORMAT_VERSION, "space")
    try:
        latent_dim = int(meta["latent_dim"])
        hidden = tuple(int(h) for h in meta["hidden"])
        loss = LossSettings(**meta.get("loss", {}))
        records = dict(meta["adapters"])
    except (KeyError, TypeError, ValueError) as exc:
        raise XlhandError(f"malformed space metadata ({type(exc).__name__}: {exc})", path) from None
    actual = fingerprint_tensors(tensors)
    if meta.get("fingerprint") != actual:
        raise XlhandError(
            f"fingerprint in the metadata ({str(meta.get('fingerprint'))[:12]}) does not match the weights "
            f"({actual[:12]}); the file was modified or corrupted",
            path,
        )
    adapters, hands = {}, {}
    for name, record in records.items():
        hand = resolver(name, record)
        check_hand_matches(hand, name, record, path)
        adapter = Adapter(hand.dof, latent_dim, hidden)
        prefix = f"{name}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            adapter.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise XlhandError(f"weights of hand {name!r} do not fit its adapter ({str(exc).splitlines()[0]})",
                              path) from None
        adapter.requires_grad_(False)
        adapters[name], hands[name] = adapter, hand
    return Space(adapters, hands, latent_dim, hidden, loss, dict(meta.get("provenance", {})), path,
                 {n: r.get("source", {}) for n, r in records.items()})


def check_hand_matches(hand: Hand, name: str, record: dict, path: Path) -> None:
    """Refuse an adapter whose hand's kinematics differ from the hand we have."""
    if list(record.get("joint_names", [])) != list(hand.joint_names):
        raise XlhandError(f"hand {name!r}: joint names in the file differ from the installed hand's", path)
    if record.get("kinematics_hash") != hand.kinematics_hash:
        raise XlhandError(
            f"hand {name!r}: kinematics hash {record.get('kinematics_hash')} in the file differs from the installed "
            f"hand's {hand.kinematics_hash} (its URDF, fingertips, mount or limits changed)",
            path,
        )
