"""Write a ``hand.toml`` that pins what xlhand decided for a hand (fingertips, mount, limits)."""

from __future__ import annotations

import re

from xlhand.hand.model import Hand
from xlhand.hand.rotation import matrix_rpy


def toml_str(text: str) -> str:
    """``text`` as a TOML basic string: UTF-8 as is (``json.dumps`` would write a character outside the BMP as a
    surrogate pair ``\\ud83d\\udd90``, which TOML refuses), with ``"``, ``\\`` and control characters escaped."""
    out = []
    for ch in text:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


_SHORT_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_str(key)


def _floats(values) -> str:
    return "[" + ", ".join(repr(float(v) + 0.0) for v in values) + "]"


def hand_toml(hand: Hand, name: str, urdf_name: str, description: str, *, limits: bool = False) -> str:
    """A ``hand.toml`` pinning what was decided for ``hand``: fingertips (with offsets) and mount (xyz, rpy), and
    with ``limits`` every actuated joint's limits as the hand holds them (so a copy has the same kinematics hash)."""
    first = hand.robot.joint_by_name[hand.joint_names[0]]
    lines = [
        f"# Written by xlhand from {hand.urdf_path.name}: the fingertips and the mount are what `xlhand inspect`",
        f"# decided, pinned here. Check them with `xlhand inspect {name}` and edit to correct them; every key is",
        "# described in xlhand's docs/hand-toml.md.",
        f"name = {toml_str(name)}",
        f"urdf = {toml_str(urdf_name)}",
        f"description = {toml_str(description)}",
        f"driver = {toml_str(hand.spec.driver)}"
        + ("                   # xlhand's simulated driver, until a plugin registers a real one"
           if hand.spec.driver == "sim" else ""),
        "",
        "[fingertips]                     # role = link, or a link and a point in its frame (metres)",
    ]
    for role, tip in hand.tips.items():
        if any(tip.offset):
            lines.append(f"{role} = {{ link = {toml_str(tip.link)}, offset = {_floats(tip.offset)} }}")
        else:
            lines.append(f"{role} = {toml_str(tip.link)}")
    lines += [
        "",
        "[mount]                          # canonical hand frame <- URDF root, "
        + ("estimated from the geometry" if hand.mount_source == "estimated" else f"from {hand.mount_source}"),
        f"xyz = {_floats(hand.mount[:3, 3])}",
        f"rpy = {_floats(matrix_rpy(hand.mount[:3, :3]))}",
        "",
    ]
    if limits:
        lines.append("[limits]                         # actuated joint limits (radians or metres)")
        lines += [f"{_toml_key(j)} = {_floats([lo, hi])}"
                  for j, lo, hi in zip(hand.joint_names, hand.lower.tolist(), hand.upper.tolist())]
    else:
        lines += ["# [limits]                       # optional overrides of actuated joint limits (radians or metres)",
                  f"# {_toml_key(first.name)} = {_floats([first.lower, first.upper])}"]
    lines += [
        "",
        "# [vendor]                       # optional free-form strings, shown by `xlhand hands show`",
        '# maker = "..."',
        "",
    ]
    return "\n".join(lines)
