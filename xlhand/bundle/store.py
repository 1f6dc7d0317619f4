"""VLA bundles (DESIGN section 7): a directory a policy runtime loads, in the Hugging Face layout.

```
config.json              format, latent dim, chunk length 64, rate 20 Hz, space fingerprint, the hand registry
space.safetensors        the frozen space
adapters/<hand>.safetensors   onboarded hands
hands/<hand>/            a plugged hand's hand.toml + URDF + meshes (unless it is an installed plugin's hand)
policy.safetensors       when the bundle carries a policy
README.md                a generated model card
```
Every change is atomic: the new files are written beside the bundle and renamed into place, and ``config.json``
(the bundle's index) is replaced last, so an interrupted plug leaves the previous bundle intact.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from xlhand._util.atomic import write_text_atomic
from xlhand.bundle.card import model_card
from xlhand.bundle.config import BUNDLE_FORMAT, BUNDLE_VERSION, CHUNK_LENGTH, RATE_HZ, read_config
from xlhand.errors import XlhandError
from xlhand.hand.model import Hand, hand_from_spec, spec_for_urdf
from xlhand.latent.adapter_file import check_compatible, plug_adapter, read_adapter
from xlhand.latent.space import Space, registered_hand, resolve_space_path, space_from_file
from xlhand.packaging.files import copy_hand_files
from xlhand.packaging.handtoml import hand_toml
from xlhand.registry import load_hand, registry


def create_bundle(directory: str | Path, space: str | Path | None = None, *, policy: str | Path | None = None,
                  policy_eval: dict | None = None) -> dict:
    """Create a bundle at ``directory`` (which must not exist or be empty) around a space, with ``policy`` (a
    policy file of that space; its evaluation record ``policy_eval`` goes into the model card) or none."""
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise XlhandError("already exists and is not an empty directory; refusing to overwrite", directory)
    space_path = resolve_space_path(space)
    if space_path.is_dir():
        raise XlhandError("a bundle is created from a space file, not from another bundle", space_path)
    sp = space_from_file(space_path, registered_hand)
    policy_meta = None
    if policy is not None:
        from xlhand.policy.io import load_policy

        _, policy_meta = load_policy(policy, space_fingerprint=sp.fingerprint)
    config = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_VERSION,
        "latent_dim": sp.latent_dim,
        "chunk_length": CHUNK_LENGTH,
        "rate_hz": RATE_HZ,
        "space_fingerprint": sp.fingerprint,
        "space_file": "space.safetensors",
        "space_hands": sp.hands,
        "hands": {name: {"adapter": "space", "kinematics": sp.sources.get(name) or {"registered": name}}
                  for name in sp.hands},
        "policy": "policy.safetensors" if policy is not None else None,
    }
    if policy_meta is not None:
        config["policy_info"] = {"training": policy_meta.get("training", {}), "eval": policy_eval or {}}
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        shutil.copyfile(sp.path, staging / "space.safetensors")
        if policy is not None:
            shutil.copyfile(policy, staging / "policy.safetensors")
        (staging / "adapters").mkdir()
        (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (staging / "README.md").write_text(model_card(config), encoding="utf-8")
        if directory.exists():
            directory.rmdir()
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return config


def create_prebuilt_bundle(directory: str | Path) -> dict:
    """The prebuilt VLA bundle: the shipped default space and the policy shipped for it."""
    from xlhand.policy.prebuilt import prebuilt_eval, prebuilt_policy

    policy = prebuilt_policy()
    if policy is None:
        raise XlhandError("this installation ships no prebuilt policy (xlhand/policy/weights/default.safetensors)")
    return create_bundle(directory, None, policy=policy, policy_eval=prebuilt_eval())


def _bundle_hand_resolver(bundle: Path, config: dict):
    def resolve(name: str, record: dict) -> Hand:
        kin = config.get("hands", {}).get(name, {}).get("kinematics") or record.get("source") or {}
        if "hand_toml" in kin:
            path = (bundle / kin["hand_toml"]).resolve()
            if not path.is_relative_to(bundle.resolve()):
                raise XlhandError(f"hand {name!r}: kinematics path escapes the bundle", bundle / "config.json")
            return load_hand(path)
        return registered_hand(kin.get("registered", name), record)

    return resolve


def load_bundle_space(bundle: str | Path) -> Space:
    """The bundle's space with every plugged adapter; hands resolve from the bundle's copies or installed plugins."""
    bundle = Path(bundle)
    config = read_config(bundle)
    resolver = _bundle_hand_resolver(bundle, config)
    space = space_from_file(bundle / config.get("space_file", "space.safetensors"), resolver)
    if space.fingerprint != config.get("space_fingerprint"):
        raise XlhandError("space.safetensors does not match the fingerprint in config.json", bundle / "config.json")
    space.path = bundle
    for name, entry in config.get("hands", {}).items():
        if entry.get("adapter") == "space":
            continue
        adapter_path = bundle / entry["adapter"]
        hand = resolver(name, {})
        plug_adapter(space, adapter_path, hand)
    return space


def hand_from_source(source: dict, name: str) -> Hand:
    """Rebuild the hand an adapter records as its source (``xlhand.training.onboard.resolve_hand``'s record): its
    ``hand.toml``, its bare URDF with the name and fingertips it was onboarded with, or a registered hand."""
    if "hand_toml" in source:
        return load_hand(Path(source["hand_toml"]))
    if "urdf" in source:
        return hand_from_spec(spec_for_urdf(Path(source["urdf"]), name=source.get("name", name),
                                            fingertips=source.get("fingertips") or None))
    return load_hand(source.get("registered", name))


def plug(bundle: str | Path, adapter: str | Path, hand: Hand | str | Path | None = None) -> dict:
    """Plug an adapter file into a bundle, atomically, after the fingerprint and kinematics checks.

    ``hand`` is the hand the adapter belongs to (default: the hand the adapter records — an installed plugin's
    name, the ``hand.toml`` it was onboarded from, or its bare URDF with the recorded name and fingertips; see
    :func:`hand_from_source`; ``xlhand bundle plug`` is this function). A hand that is not an installed plugin is copied into the
    bundle (hand.toml + URDF + meshes) so the bundle works on machines that never saw the original files.
    """
    bundle, adapter = Path(bundle), Path(adapter)
    config = read_config(bundle)
    space = load_bundle_space(bundle)
    _, meta = read_adapter(adapter)
    check_compatible(meta, space, adapter)
    name = meta["hand"]
    if hand is None:
        hand_obj = hand_from_source(meta["record"].get("source", {}), name)
    else:
        hand_obj = load_hand(hand) if not isinstance(hand, Hand) else hand
    if hand_obj.name != name:
        raise XlhandError(f"the adapter is for hand {name!r}, not {hand_obj.name!r}", adapter)
    plug_adapter(space, adapter, hand_obj)  # all checks, in memory, before anything is written

    reg = registry().hands.get(name)
    installed = reg is not None and reg.spec.urdf == hand_obj.spec.urdf
    staged: list[tuple[Path, Path]] = []
    tmp_root = Path(tempfile.mkdtemp(prefix=".plug.", dir=bundle))
    try:
        adapter_rel = f"adapters/{name}.safetensors"
        shutil.copyfile(adapter, tmp_root / "adapter.safetensors")
        staged.append((tmp_root / "adapter.safetensors", bundle / adapter_rel))
        if installed:
            kinematics = {"registered": name}
        else:
            copy_hand(hand_obj, tmp_root / "hand")
            staged.append((tmp_root / "hand", bundle / "hands" / name))
            kinematics = {"hand_toml": f"hands/{name}/hand.toml"}
        new_config = dict(config)
        new_config["hands"] = dict(config.get("hands", {}))
        new_config["hands"][name] = {"adapter": adapter_rel, "kinematics": kinematics,
                                    "report": meta.get("report", {}).get("summary", {})}
        for src, dst in staged:
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.is_dir():
                shutil.rmtree(dst)
            src.rename(dst)
        write_text_atomic(bundle / "README.md", model_card(new_config))
        write_text_atomic(bundle / "config.json", json.dumps(new_config, indent=2) + "\n")
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return new_config


def copy_hand(hand: Hand, dest: Path) -> None:
    """Copy a hand's URDF with every file it references and a ``hand.toml`` pinning what xlhand decided
    (fingertips, mount, every joint limit), so the copy loads to the same kinematics hash anywhere."""
    dest.mkdir(parents=True)
    copy_hand_files(hand.urdf_path, dest)
    text = hand_toml(hand, hand.name, hand.urdf_path.name, hand.spec.description, limits=True)
    (dest / "hand.toml").write_text(text, encoding="utf-8")


def show_bundle(bundle: str | Path) -> dict:
    """The bundle's config plus what loads from it (hands, dof, fingers)."""
    bundle = Path(bundle)
    config = read_config(bundle)
    space = load_bundle_space(bundle)
    hands = {
        name: {
            "dof": space.hand(name).dof,
            "fingers": space.hand(name).fingers,
            "adapter": config["hands"][name]["adapter"],
            "kinematics": config["hands"][name]["kinematics"],
        }
        for name in space.hands
    }
    return {"path": str(bundle), **config, "hands": hands}
