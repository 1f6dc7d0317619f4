"""A hand's visual geometry as trimesh pieces in link frames, loaded once per hand (no OpenGL here).

Each URDF ``<visual>`` becomes one :class:`Piece`: primitives (box, cylinder, sphere) are made by trimesh; mesh
files (OBJ with MTL, STL binary or ASCII, DAE, GLB/GLTF, PLY, ...) are read by trimesh with the URDF ``scale``
baked into the vertices. A missing or unreadable mesh gives a :class:`RenderWarning` and a stand-in: a sphere at
the link's origin and a rod toward each child joint, drawn in orange. A hand with no visual geometry at all is
drawn the same way for every link, as a stick figure.
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trimesh

from xlhand.hand.urdf import HandWarning, Visual

DEFAULT_RGBA = (0.72, 0.74, 0.78, 1.0)  # light steel, for geometry without a colour
STANDIN_RGBA = (0.95, 0.5, 0.1, 1.0)  # orange: "this is not the real part"


class RenderWarning(HandWarning):
    """Something the renderer drew differently from the hand's description (a mesh it could not read)."""


@dataclass
class Surface:
    """One trimesh with its colour: ``rgba`` floats in [0, 1]; ``texture`` a PIL image or None."""

    mesh: trimesh.Trimesh
    rgba: tuple[float, float, float, float]
    texture: object | None = None
    smooth: bool = False
    closed: bool = False  # a closed, outward-facing surface: back faces can be culled (half the triangles)


@dataclass
class Piece:
    """Geometry rigidly attached to ``link``: surfaces in the piece frame, ``pose`` 4x4 link <- piece.

    ``center``/``radius`` bound the piece (metres, piece frame); ``key`` identifies shared geometry (one mesh
    file used by several links is loaded and uploaded once).
    """

    link: str
    pose: np.ndarray
    surfaces: list[Surface]
    key: str
    center: np.ndarray = field(default_factory=lambda: np.zeros(3))
    radius: float = 0.0
    standin: bool = False


_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def hand_pieces(hand) -> list[Piece]:
    """The drawable pieces of ``hand`` (cached per hand; warnings are given on the first call only)."""
    pieces = _cache.get(hand)
    if pieces is None:
        pieces = _build(hand)
        _cache[hand] = pieces
    return pieces


def _build(hand) -> list[Piece]:
    robot = hand.robot
    size = _hand_size(robot)
    loaded: dict[tuple, list[_Loaded] | str] = {}  # per file and scale: its surfaces, or why there are none
    pieces: list[Piece] = []
    for i, vis in enumerate(robot.visuals):
        rgba = tuple(float(c) for c in vis.rgba) if vis.rgba is not None else DEFAULT_RGBA
        if vis.kind == "mesh":
            key = (str(vis.mesh), tuple(vis.scale))
            if key not in loaded:
                loaded[key] = _load_mesh(vis)
                for missing in [] if isinstance(loaded[key], str) else _missing_materials(vis.mesh):
                    warnings.warn(
                        f"{hand.name}: material file {missing!r} of mesh {vis.mesh.name!r} not found; "
                        "drawn in the URDF's or the default colour",
                        RenderWarning,
                        stacklevel=2,
                    )
            got = loaded[key]
            if isinstance(got, str):  # no geometry: say why and draw a stand-in
                warnings.warn(
                    f"{hand.name}: mesh {vis.mesh.name!r} of link {vis.link!r} {got}; drawn as a stand-in",
                    RenderWarning,
                    stacklevel=2,
                )
                pieces.append(_standin(robot, vis.link, size))
                continue
            surfaces = [Surface(s.mesh, s.rgba if s.rgba is not None else rgba, s.texture) for s in got]
            pieces.append(_bounded(Piece(vis.link, vis.origin, surfaces, key=f"mesh:{key}:{rgba}")))
        else:
            surface = Surface(_primitive(vis), rgba, smooth=vis.kind == "sphere", closed=True)
            pieces.append(_bounded(Piece(vis.link, vis.origin, [surface], key=f"prim:{i}")))
    if not robot.visuals:
        pieces = [_standin(robot, link, size) for link in robot.links]
    return pieces


def _primitive(vis: Visual) -> trimesh.Trimesh:
    if vis.kind == "box":
        return trimesh.creation.box(extents=vis.size)
    if vis.kind == "cylinder":
        radius, length = vis.size
        return trimesh.creation.cylinder(radius=radius, height=length, sections=24)
    if vis.kind == "sphere":
        return trimesh.creation.icosphere(subdivisions=2, radius=vis.size[0])
    raise ValueError(f"unknown visual kind {vis.kind!r}")


class _Loaded:
    """A surface read from a file: its own colour (None when the file has none) and texture."""

    def __init__(self, mesh, rgba, texture):
        self.mesh, self.rgba, self.texture = mesh, rgba, texture


def _load_mesh(vis: Visual) -> list[_Loaded] | str:
    """The surfaces of a mesh file with ``scale`` applied, or a short reason why there are none."""
    path: Path = vis.mesh
    if not path.exists():
        return "not found"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # trimesh warns about unused MTL keys and the like
            loaded = trimesh.load(str(path), process=False)
    except Exception as exc:  # trimesh raises many types for bad files
        return f"could not be read ({type(exc).__name__}: {' '.join(str(exc).split())[:80]})"
    meshes: list[trimesh.Trimesh] = []
    if isinstance(loaded, trimesh.Scene):
        for node in loaded.graph.nodes_geometry:
            transform, name = loaded.graph[node]
            geom = loaded.geometry.get(name)
            if isinstance(geom, trimesh.Trimesh):
                geom = geom.copy()
                geom.apply_transform(transform)
                meshes.append(geom)
    elif isinstance(loaded, trimesh.Trimesh):
        meshes.append(loaded)
    meshes = [m for m in meshes if len(m.faces)]
    if not meshes:
        return "has no triangles"
    out = []
    for m in meshes:
        if tuple(vis.scale) != (1.0, 1.0, 1.0):
            m.apply_transform(np.diag([*vis.scale, 1.0]))
        rgba, texture = _own_colour(m)
        out.append(_Loaded(m, rgba, texture))
    return out


def _missing_materials(path: Path) -> list[str]:
    """``mtllib`` files an OBJ names that do not exist beside it (trimesh only logs them)."""
    if path.suffix.lower() != ".obj":
        return []
    missing = []
    with open(path, "rb") as f:
        for line in f:
            if line.startswith(b"mtllib"):
                name = line[6:].strip().decode("utf-8", "replace")
                if name and not (path.parent / name).exists():
                    missing.append(name)
    return missing


def _own_colour(mesh: trimesh.Trimesh):
    """The colour a mesh file gives itself, as floats (pyrender misreads trimesh's uint8 material colours)."""
    visual = mesh.visual
    kind = getattr(visual, "kind", None)
    if kind == "texture":
        mat = visual.material
        factor = getattr(mat, "baseColorFactor", None)
        if factor is None:
            factor = getattr(mat, "diffuse", None)
        image = getattr(mat, "baseColorTexture", None) or getattr(mat, "image", None)
        has_uv = getattr(visual, "uv", None) is not None and len(visual.uv)
        rgba = _floats(factor) if factor is not None else None
        return rgba, (image if has_uv else None)
    if kind in ("vertex", "face"):
        colors = visual.face_colors if kind == "face" else visual.vertex_colors
        return _floats(np.asarray(colors, dtype=np.float64).mean(axis=0)), None
    return None, None


def _floats(color) -> tuple[float, float, float, float]:
    c = np.asarray(color, dtype=np.float64).ravel()
    if np.issubdtype(np.asarray(color).dtype, np.integer) or c.max(initial=0) > 1.0:
        c = c / 255.0
    if c.size == 3:
        c = np.append(c, 1.0)
    return tuple(float(v) for v in np.clip(c[:4], 0.0, 1.0))


def _bounded(piece: Piece) -> Piece:
    pts = np.concatenate([s.mesh.vertices for s in piece.surfaces])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    piece.center = (lo + hi) / 2
    piece.radius = float(np.linalg.norm(pts - piece.center, axis=1).max())
    return piece


def _hand_size(robot) -> float:
    """The spread of link origins at the zero pose (metres), to size stand-ins."""
    origins = np.array([t[:3, 3] for t in robot.link_transforms().values()])
    return float(np.ptp(origins, axis=0).max()) if len(origins) > 1 else 0.1


def _standin(robot, link: str, hand_size: float) -> Piece:
    """A sphere at ``link``'s origin and a rod to each child joint: a visible placeholder for a missing part."""
    r = float(np.clip(0.03 * hand_size, 0.002, 0.012))
    parts = [trimesh.creation.icosphere(subdivisions=2, radius=1.6 * r)]
    for joint in robot.child_joints[link]:
        end = joint.origin[:3, 3]
        length = float(np.linalg.norm(end))
        if length > 1e-4:
            parts.append(trimesh.creation.cylinder(radius=r, segment=np.stack([np.zeros(3), end]), sections=12))
    mesh = trimesh.util.concatenate(parts)
    surface = Surface(mesh, STANDIN_RGBA, smooth=True, closed=True)
    return _bounded(Piece(link, np.eye(4), [surface], key=f"standin:{link}", standin=True))
