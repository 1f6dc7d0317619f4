"""``hand.toml``: read and validate a hand description (format: ``docs/hand-toml.md``)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from xlhand.errors import XlhandError

ROLES = ("thumb", "index", "middle", "ring", "little")
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
TOP_KEYS = {"name", "urdf", "description", "driver", "fingertips", "mount", "limits", "vendor", "safety"}


@dataclass(frozen=True)
class Fingertip:
    """A fingertip: a link and a point in that link's frame (metres)."""

    link: str
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True, kw_only=True)
class HandSpec:
    """What a ``hand.toml`` says. ``fingertips`` maps role -> :class:`Fingertip` in role order."""

    name: str
    urdf: Path
    path: Path | None = None  # the hand.toml itself, when there is one
    description: str = ""
    driver: str = "sim"
    fingertips: dict[str, Fingertip] = field(default_factory=dict)
    mount_xyz: tuple[float, float, float] | None = None
    mount_rpy: tuple[float, float, float] | None = None
    limits: dict[str, tuple[float, float]] = field(default_factory=dict)
    vendor: dict[str, str] = field(default_factory=dict)
    safety: dict = field(default_factory=dict)  # the [safety] table; validated by xlhand.runtime.safety


def validate_name(name: str, path=None, key: str = "name") -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise XlhandError(
            f"{name!r} is not a valid hand name (lowercase letters, digits, '-' or '_', starting with a letter, "
            "at most 64 characters)",
            path,
            key,
        )
    return name


def _floats(value, n: int, path, key: str) -> tuple[float, ...]:
    if (
        not isinstance(value, list)
        or len(value) != n
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        or not all(math.isfinite(v) for v in value)
    ):
        raise XlhandError(f"expected a list of {n} finite numbers, got {value!r}", path, key)
    return tuple(float(v) for v in value)


def _string(value, path, key: str) -> str:
    if not isinstance(value, str):
        raise XlhandError(f"expected a string, got {type(value).__name__} {value!r}", path, key)
    return value


def _table(value, path, key: str) -> dict:
    if not isinstance(value, dict):
        raise XlhandError(f"expected a table, got {type(value).__name__}", path, key)
    return value


def load_spec(path: str | Path) -> HandSpec:
    """Read ``hand.toml`` at ``path``; every problem is an :class:`XlhandError` naming the file and key."""
    path = Path(path)
    if not path.is_file():
        raise XlhandError("no such file", path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise XlhandError("not UTF-8 text", path) from None
    except tomllib.TOMLDecodeError as exc:
        raise XlhandError(f"not valid TOML ({exc})", path) from None
    return spec_from_dict(data, path)


def spec_from_dict(data: dict, path: Path) -> HandSpec:
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise XlhandError(f"unknown key (allowed: {', '.join(sorted(TOP_KEYS))})", path, unknown[0])
    for required in ("name", "urdf"):
        if required not in data:
            raise XlhandError("missing required key", path, required)
    name = validate_name(_string(data["name"], path, "name"), path)
    urdf_rel = _string(data["urdf"], path, "urdf")
    base = path.resolve().parent
    urdf = (base / urdf_rel).resolve()
    if not urdf.is_relative_to(base):
        raise XlhandError(f"{urdf_rel!r} is outside the hand's folder", path, "urdf")
    if not urdf.is_file():
        raise XlhandError(f"URDF file {urdf_rel!r} does not exist", path, "urdf")

    fingertips: dict[str, Fingertip] = {}
    tips = _table(data.get("fingertips", {}), path, "fingertips")
    for role, value in tips.items():
        key = f"fingertips.{role}"
        if role not in ROLES:
            raise XlhandError(f"unknown finger role (allowed: {', '.join(ROLES)})", path, key)
        if isinstance(value, str):
            fingertips[role] = Fingertip(value)
        elif isinstance(value, dict):
            extra = sorted(set(value) - {"link", "offset"})
            if extra:
                raise XlhandError("unknown key (allowed: link, offset)", path, f"{key}.{extra[0]}")
            if "link" not in value:
                raise XlhandError("missing required key", path, f"{key}.link")
            link = _string(value["link"], path, f"{key}.link")
            offset = _floats(value.get("offset", [0.0, 0.0, 0.0]), 3, path, f"{key}.offset")
            fingertips[role] = Fingertip(link, offset)
        else:
            raise XlhandError("expected a link name or a table {link, offset}", path, key)
    fingertips = {r: fingertips[r] for r in ROLES if r in fingertips}

    mount_xyz = mount_rpy = None
    if "mount" in data:
        mount = _table(data["mount"], path, "mount")
        extra = sorted(set(mount) - {"xyz", "rpy"})
        if extra:
            raise XlhandError("unknown key (allowed: xyz, rpy)", path, f"mount.{extra[0]}")
        mount_xyz = _floats(mount.get("xyz", [0.0, 0.0, 0.0]), 3, path, "mount.xyz")
        mount_rpy = _floats(mount.get("rpy", [0.0, 0.0, 0.0]), 3, path, "mount.rpy")

    limits = {}
    for joint, value in _table(data.get("limits", {}), path, "limits").items():
        lo, hi = _floats(value, 2, path, f"limits.{joint}")
        if not hi > lo:
            raise XlhandError(f"lower {lo} must be below upper {hi}", path, f"limits.{joint}")
        limits[joint] = (lo, hi)

    vendor = {}
    for key, value in _table(data.get("vendor", {}), path, "vendor").items():
        vendor[key] = _string(value, path, f"vendor.{key}")

    return HandSpec(
        name=name,
        urdf=urdf,
        path=path,
        description=_string(data.get("description", ""), path, "description"),
        driver=_string(data.get("driver", "sim"), path, "driver"),
        fingertips=fingertips,
        mount_xyz=mount_xyz,
        mount_rpy=mount_rpy,
        limits=limits,
        vendor=vendor,
        safety=_table(data.get("safety", {}), path, "safety"),
    )
