"""Read a URDF safely into a validated kinematic tree.

Parsing is done by yourdfpy on an lxml tree that we parse ourselves with entity expansion and network access
off, after rejecting documents that declare entities (XML bombs). Structural checks that yourdfpy does not do
(unknown links, a link with two parents, cycles, several roots, dangling mimic references, mesh paths that
escape the hand's folder) are made here, each reported as one line naming the file.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from lxml import etree

from xlhand.errors import XlhandError
from xlhand.hand.rotation import skew
from xlhand.hand.xmlsafe import parse_xml

MOVABLE = ("revolute", "continuous", "prismatic")


SUPPORTED = MOVABLE + ("fixed",)




UNLIMITED_REVOLUTE = (-math.pi, math.pi)  # radians, given to joints without usable limits


UNLIMITED_PRISMATIC = (-0.05, 0.05)  # metres


class HandWarning(UserWarning):
    """Something about a hand description that xlhand worked around."""


@dataclass(frozen=True)
class Joint:
    """One URDF joint. ``origin`` is the 4x4 parent->child transform at zero; ``axis`` a unit 3-vector."""

    name: str
    type: str  # "revolute" | "prismatic" | "fixed" ("continuous" becomes "revolute")
    parent: str
    child: str
    origin: np.ndarray
    axis: np.ndarray
    lower: float = 0.0
    upper: float = 0.0
    mimic: tuple[str, float, float] | None = None  # (joint, multiplier, offset)

    @property
    def movable(self) -> bool:
        return self.type != "fixed"


@dataclass(frozen=True)
class Visual:
    """One visual element of a link: a primitive or a mesh file (``mesh`` resolved to a path, maybe missing)."""

    link: str
    origin: np.ndarray
    kind: str  # "box" | "cylinder" | "sphere" | "mesh"
    size: tuple[float, ...] = ()  # box (x, y, z); cylinder (radius, length); sphere (radius,)
    mesh: Path | None = None
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    rgba: tuple[float, float, float, float] | None = None


@dataclass
class Robot:
    """A validated kinematic tree. ``joints`` keep URDF file order."""

    name: str
    path: Path
    links: list[str]
    joints: list[Joint]
    root: str
    visuals: list[Visual] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    collisions: list[Visual] = field(default_factory=list)  # <collision> geometry, same form as visuals

    def __post_init__(self):
        self.joint_by_name = {j.name: j for j in self.joints}
        self.parent_joint = {j.child: j for j in self.joints}
        self.child_joints: dict[str, list[Joint]] = {name: [] for name in self.links}
        for j in self.joints:
            self.child_joints[j.parent].append(j)

    @property
    def leaves(self) -> list[str]:
        return [name for name in self.links if not self.child_joints[name]]

    def chain_to(self, link: str) -> list[Joint]:
        """Joints from the root down to ``link``, root first."""
        chain = []
        while link in self.parent_joint:
            j = self.parent_joint[link]
            chain.append(j)
            link = j.parent
        return chain[::-1]

    def link_transforms(self, q_full: dict[str, float] | None = None) -> dict[str, np.ndarray]:
        """4x4 root->link transforms (numpy, one configuration; ``q_full`` by joint name, default zero)."""
        q_full = q_full or {}
        out = {self.root: np.eye(4)}
        stack = [self.root]
        while stack:
            link = stack.pop()
            for j in self.child_joints[link]:
                out[j.child] = out[link] @ j.origin @ joint_motion(j, q_full.get(j.name, 0.0))
                stack.append(j.child)
        return out


def joint_motion(joint: Joint, value: float) -> np.ndarray:
    """4x4 motion of a joint at ``value`` (radians about, or metres along, its axis)."""
    m = np.eye(4)
    if joint.type == "revolute":
        k = skew(joint.axis)
        m[:3, :3] = np.eye(3) + math.sin(value) * k + (1 - math.cos(value)) * (k @ k)
    elif joint.type == "prismatic":
        m[:3, 3] = joint.axis * value
    return m


def load_robot(path: str | Path) -> Robot:
    """Read and validate a URDF file. Raises :class:`XlhandError` naming the file on any problem."""
    import yourdfpy

    path = Path(path)
    root = parse_xml(path)
    if etree.QName(root).localname != "robot":
        raise XlhandError(f"not a URDF: the root element is <{etree.QName(root).localname}>, expected <robot>", path)
    etree.strip_tags(root, etree.Comment)
    _check_raw_structure(root, path)
    try:
        # private yourdfpy API (parses an lxml element we already checked): why pyproject bounds yourdfpy <0.0.61
        robot = yourdfpy.URDF._parse_robot(xml_element=root)
    except Exception as exc:  # yourdfpy raises bare ValueError/TypeError/AttributeError on malformed values
        raise XlhandError(f"malformed URDF ({type(exc).__name__}: {exc})", path) from None

    notes: list[str] = []
    links = [link.name for link in robot.links]
    joints = [_convert_joint(j, path, notes) for j in robot.joints]
    tree_root = _check_tree(links, joints, path)
    _check_mimic(joints, path)
    visuals = _convert_visuals(robot, path, notes)
    collisions = _convert_visuals(robot, path, [], "collisions")  # missing collision meshes: the sim builder warns
    for note in notes:
        warnings.warn(f"{path}: {note}", HandWarning, stacklevel=2)
    return Robot(name=robot.name or path.stem, path=path, links=links, joints=joints, root=tree_root,
                 visuals=visuals, warnings=notes, collisions=collisions)


def _unique_names(root: etree._Element, tag: str, path: Path) -> set[str]:
    """The names of ``root``'s ``<tag>`` elements; every one must have a name, and no name may repeat."""
    seen: set[str] = set()
    for el in root.findall(tag):
        name = el.get("name")
        if not name:
            raise XlhandError(f"a <{tag}> has no name", path)
        if name in seen:
            raise XlhandError(f"{tag} {name!r} is defined twice", path)
        seen.add(name)
    return seen


def _check_raw_structure(root: etree._Element, path: Path) -> None:
    if not root.findall("link"):
        raise XlhandError("not a URDF: <robot> has no <link> elements", path)
    seen = _unique_names(root, "link", path)
    _unique_names(root, "joint", path)
    for el in root.findall("joint"):
        name = el.get("name")
        jtype = el.get("type")
        if jtype not in SUPPORTED:
            raise XlhandError(f"joint {name!r} has type {jtype!r}; supported types are {', '.join(SUPPORTED)}", path)
        for tag in ("parent", "child"):
            sub = el.find(tag)
            if sub is None or not sub.get("link"):
                raise XlhandError(f"joint {name!r} has no <{tag} link=...>", path)
            if sub.get("link") not in seen:
                raise XlhandError(f"joint {name!r} names {tag} link {sub.get('link')!r}, which does not exist", path)


def _convert_joint(j, path: Path, notes: list[str]) -> Joint:
    origin = np.array(j.origin if j.origin is not None else np.eye(4), dtype=np.float64)
    jtype = "revolute" if j.type == "continuous" else j.type
    axis = np.array(j.axis if j.axis is not None else (1.0, 0.0, 0.0), dtype=np.float64)
    if jtype != "fixed":
        norm = float(np.linalg.norm(axis))
        if not math.isfinite(norm) or norm < 1e-9:
            raise XlhandError(f"joint {j.name!r} has a zero or invalid axis", path)
        axis = axis / norm
    if not np.all(np.isfinite(origin)):
        raise XlhandError(f"joint {j.name!r} has a non-finite origin", path)
    lower = upper = 0.0
    if jtype != "fixed":
        lim = j.limit
        lo = None if lim is None else lim.lower
        hi = None if lim is None else lim.upper
        usable = (
            j.type != "continuous"
            and lo is not None
            and hi is not None
            and math.isfinite(lo)
            and math.isfinite(hi)
            and hi > lo
        )
        if usable:
            lower, upper = float(lo), float(hi)
        else:
            lower, upper = UNLIMITED_PRISMATIC if jtype == "prismatic" else UNLIMITED_REVOLUTE
            unit = "m" if jtype == "prismatic" else "rad"
            why = "is continuous" if j.type == "continuous" else "has no usable limits"
            notes.append(f"joint {j.name!r} {why}; using [{lower:g}, {upper:g}] {unit}")
    mimic = None
    if j.mimic is not None and jtype != "fixed":
        mult = 1.0 if j.mimic.multiplier is None else float(j.mimic.multiplier)
        off = 0.0 if j.mimic.offset is None else float(j.mimic.offset)
        mimic = (j.mimic.joint, mult, off)
    return Joint(name=j.name, type=jtype, parent=j.parent, child=j.child, origin=origin, axis=axis,
                 lower=lower, upper=upper, mimic=mimic)


def _check_tree(links: list[str], joints: list[Joint], path: Path) -> str:
    parent_of: dict[str, str] = {}
    for j in joints:
        if j.child in parent_of:
            raise XlhandError(f"link {j.child!r} has two parent joints ({parent_of[j.child]!r} and {j.name!r})", path)
        parent_of[j.child] = j.name
    by_child = {j.child: j for j in joints}
    # a cycle: walking up from any link never reaches a parentless link
    for start in links:
        seen = {start}
        link = start
        while link in by_child:
            link = by_child[link].parent
            if link in seen:
                raise XlhandError(f"the joints form a cycle through link {link!r}", path)
            seen.add(link)
    roots = [name for name in links if name not in parent_of]
    if len(roots) != 1:
        shown = ", ".join(repr(r) for r in roots[:5])
        raise XlhandError(f"the links form {len(roots)} separate trees (roots {shown}); a URDF needs exactly one root", path)
    return roots[0]


def _check_mimic(joints: list[Joint], path: Path) -> None:
    by_name = {j.name: j for j in joints}
    for j in joints:
        if j.mimic is None:
            continue
        target = by_name.get(j.mimic[0])
        if target is None:
            raise XlhandError(f"joint {j.name!r} mimics {j.mimic[0]!r}, which does not exist", path)
        if not target.movable:
            raise XlhandError(f"joint {j.name!r} mimics {j.mimic[0]!r}, which is fixed", path)
        seen = {j.name}
        while target.mimic is not None:
            if target.name in seen:
                raise XlhandError(f"mimic joints form a cycle through {target.name!r}", path)
            seen.add(target.name)
            if target.mimic[0] not in by_name:  # a mimic of a mimic that names a missing joint
                raise XlhandError(f"joint {target.name!r} mimics {target.mimic[0]!r}, which does not exist", path)
            target = by_name[target.mimic[0]]


def resolve_mesh_path(filename: str, urdf_path: Path) -> Path:
    """Map a URDF mesh filename to a file inside the URDF's folder.

    Relative paths are relative to the URDF; ``package://PKG/rest`` is looked up as ``rest`` and ``PKG/rest``
    relative to the URDF's folder; ``file://`` is stripped. A path that leaves the folder is refused.
    """
    base = urdf_path.resolve().parent
    name = filename.strip()
    candidates: list[Path]
    if name.startswith("package://"):
        rest = name[len("package://"):]
        pkg, _, tail = rest.partition("/")
        candidates = [base / tail, base / rest]
        if base.name == pkg:
            candidates.insert(0, base / tail)
    else:
        if name.startswith("file://"):
            name = name[len("file://"):]
        candidates = [Path(name) if os.path.isabs(name) else base / name]
    for cand in candidates:
        resolved = cand.resolve()
        if not resolved.is_relative_to(base):
            raise XlhandError(f"mesh path {filename!r} escapes the hand's folder {str(base)!r}", urdf_path)
    for cand in candidates:
        if cand.resolve().exists():
            return cand.resolve()
    return candidates[0].resolve()


def _convert_visuals(robot, path: Path, notes: list[str], kind: str = "visuals") -> list[Visual]:
    """A link's ``<visual>`` (or, with ``kind="collisions"``, ``<collision>``) elements as :class:`Visual`."""
    materials = {m.name: m for m in robot.materials if m.name}
    out = []
    for link in robot.links:
        for vis in getattr(link, kind):
            geom = vis.geometry
            if geom is None:
                continue
            origin = np.array(vis.origin if vis.origin is not None else np.eye(4), dtype=np.float64)
            rgba = None
            mat = getattr(vis, "material", None)
            if mat is not None and mat.color is None and mat.name in materials:
                mat = materials[mat.name]
            if mat is not None and mat.color is not None:
                rgba = tuple(float(c) for c in mat.color.rgba)
            if geom.mesh is not None:
                mesh_path = resolve_mesh_path(geom.mesh.filename, path)
                scale = geom.mesh.scale
                if scale is None:
                    scale = (1.0, 1.0, 1.0)
                elif np.ndim(scale) == 0:
                    scale = (float(scale),) * 3
                else:
                    scale = tuple(float(s) for s in scale)
                if not mesh_path.exists():
                    notes.append(f"mesh {geom.mesh.filename!r} of link {link.name!r} not found")
                out.append(Visual(link.name, origin, "mesh", mesh=mesh_path, scale=scale, rgba=rgba))
            elif geom.box is not None:
                out.append(Visual(link.name, origin, "box", tuple(float(s) for s in geom.box.size), rgba=rgba))
            elif geom.cylinder is not None:
                out.append(Visual(link.name, origin, "cylinder",
                                  (float(geom.cylinder.radius), float(geom.cylinder.length)), rgba=rgba))
            elif geom.sphere is not None:
                out.append(Visual(link.name, origin, "sphere", (float(geom.sphere.radius),), rgba=rgba))
    return out
