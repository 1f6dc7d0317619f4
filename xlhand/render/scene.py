"""One pyrender scene for every hand of the process, and the camera that frames each hand the same way round.

**The view.** All hands are shown in the canonical hand frame (origin at the wrist, fingers +z, palm +x, thumb
+y) through an orthographic camera that looks at the palm: from +x, turned ``azimuth`` degrees about +z toward
the thumb side (+y) and raised ``elevation`` degrees toward the fingertips. Fingers point up the image and the
thumb is on the image's right (a right hand seen from its palm side). The default three-quarter view
(30, 15 degrees) shows finger flexion, which a straight palm view would hide.

**Framing** is computed once per hand and view from the hand's whole workspace, not from the pose being shown:
every visual piece's bounding sphere over the joint-limit corners and a fixed set of random configurations. So a
hand never leaves the frame whatever its pose, stays the same size through an animation, and different hands
fill their cells alike.

**Scene.** pyrender re-uploads a mesh whenever it leaves the scene being rendered, so all hands stay in one
scene and only the shown hand's meshes are visible. Meshes go in node by node with ``smooth=False`` (except
spheres) and float colours, the two pyrender quirks measured here.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import numpy as np
import torch

from xlhand.render import gl
from xlhand.render.geometry import Piece, hand_pieces

BACKGROUND = (1.0, 1.0, 1.0)
FRAMING_SAMPLES = 192
MARGIN = 1.06  # the frame is this much larger than the workspace


@dataclass(frozen=True)
class View:
    """Camera direction in the canonical frame: degrees from +x toward +y (about +z), then up toward +z."""

    azimuth: float = 30.0
    elevation: float = 15.0

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(right, up, back) unit vectors: image x, image y, and from the hand toward the camera."""
        az, el = math.radians(self.azimuth), math.radians(self.elevation)
        back = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        right = np.cross([0.0, 0.0, 1.0], back)
        right /= np.linalg.norm(right)
        up = np.cross(back, right)
        return right, up, back


@dataclass(frozen=True)
class Framing:
    """Where the camera looks for one hand and view: image-plane bounds (metres) and depth range."""

    u: tuple[float, float]  # along ``right``
    v: tuple[float, float]  # along ``up``
    w: tuple[float, float]  # along ``back``
    size: float  # the larger image-plane extent, metres

    def camera(self, view: View, width: int, height: int):
        """(pose 4x4 camera->canonical, xmag, ymag, znear, zfar) showing the whole workspace at this aspect."""
        right, up, back = view.axes()
        cu, cv = sum(self.u) / 2, sum(self.v) / 2
        hu, hv = (self.u[1] - self.u[0]) / 2 * MARGIN, (self.v[1] - self.v[0]) / 2 * MARGIN
        aspect = width / height
        xmag = max(hu, hv * aspect)
        ymag = xmag / aspect
        depth = self.w[1] - self.w[0]
        dist = self.w[1] + 0.5 * depth + 1e-3  # in front of the nearest point
        pose = np.eye(4)
        pose[:3, 0], pose[:3, 1], pose[:3, 2] = right, up, back
        pose[:3, 3] = cu * right + cv * up + dist * back
        znear = max(dist - self.w[1] - 0.25 * depth, 1e-4)
        zfar = dist - self.w[0] + 0.25 * depth
        return pose, xmag, ymag, znear, zfar

    def project(self, view: View, width: int, height: int, points: np.ndarray) -> np.ndarray:
        """Canonical-frame points ``(N, 3)`` -> pixel coordinates ``(N, 2)`` (x right, y down) and depth ``(N,)``."""
        pose, xmag, ymag, _, _ = self.camera(view, width, height)
        rel = points - pose[:3, 3]
        x = rel @ pose[:3, 0] / xmag
        y = rel @ pose[:3, 1] / ymag
        depth = -(rel @ pose[:3, 2])
        px = np.stack([(x + 1) * 0.5 * width, (1 - y) * 0.5 * height], axis=1)
        return px, depth


def workspace_framing(hand, view: View, pieces: list[Piece]) -> Framing:
    """Bounds of ``hand``'s geometry over its joint range, in the view's image plane and depth."""
    gen = torch.Generator().manual_seed(0)
    q = torch.cat([hand.lower[None], hand.upper[None], ((hand.lower + hand.upper) / 2)[None],
                   hand.sample(FRAMING_SAMPLES, generator=gen)])
    with torch.no_grad():
        poses = {k: v.double().numpy() for k, v in hand.link_poses(q).items()}
        tips = hand.fingertips(q).double().numpy().reshape(-1, 3)
    right, up, back = view.axes()
    axes = np.stack([right, up, back])  # (3, 3)
    lo = tips @ axes.T
    hi = lo.copy()
    lo, hi = lo.min(axis=0), hi.max(axis=0)
    for piece in pieces:
        T = poses.get(piece.link)
        if T is None:
            continue
        centers = T[:, :3, :3] @ (piece.pose[:3, :3] @ piece.center + piece.pose[:3, 3]) + T[:, :3, 3]
        proj = centers @ axes.T  # (S, 3)
        lo = np.minimum(lo, proj.min(axis=0) - piece.radius)
        hi = np.maximum(hi, proj.max(axis=0) + piece.radius)
    size = float(max(hi[0] - lo[0], hi[1] - lo[1]))
    return Framing(u=(lo[0], hi[0]), v=(lo[1], hi[1]), w=(lo[2], hi[2]), size=size)


class _Entry:
    """One hand's nodes in the stage and its framings per view."""

    def __init__(self, stage: Stage, hand):
        import pyrender

        self.pieces = hand_pieces(hand)
        self.meshes: list = []
        self.nodes: list[tuple[Piece, object]] = []
        by_key: dict[str, object] = {}
        for piece in self.pieces:
            mesh = by_key.get(piece.key)
            if mesh is None:
                mesh = by_key[piece.key] = _pyrender_mesh(pyrender, piece)
                mesh.is_visible = False
                self.meshes.append(mesh)
            node = pyrender.Node(mesh=mesh, matrix=np.eye(4))
            stage.scene.add_node(node)
            self.nodes.append((piece, node))
        self.framings: dict[View, Framing] = {}

    def framing(self, hand, view: View) -> Framing:
        if view not in self.framings:
            self.framings[view] = workspace_framing(hand, view, self.pieces)
        return self.framings[view]

    def show(self, visible: bool) -> None:
        for mesh in self.meshes:
            mesh.is_visible = visible

    def remove(self, scene) -> None:
        for _, node in self.nodes:
            if node in scene.nodes:
                scene.remove_node(node)


def _pyrender_mesh(pyrender, piece: Piece):
    primitives = []
    for s in piece.surfaces:
        opaque = s.rgba[3] >= 0.999
        material = pyrender.MetallicRoughnessMaterial(
            baseColorFactor=[float(c) for c in s.rgba],
            baseColorTexture=s.texture,
            metallicFactor=0.1,
            roughnessFactor=0.6,
            alphaMode="OPAQUE" if opaque else "BLEND",
            doubleSided=not s.closed,
        )
        mesh = pyrender.Mesh.from_trimesh(s.mesh, material=material, smooth=s.smooth)
        primitives.extend(mesh.primitives)
    return pyrender.Mesh(primitives=primitives)


# key light over the viewer's left shoulder, fill from the right, rim from behind; directions in the camera frame
_LIGHTS = [((-0.5, 0.6, 1.0), 2.6), ((0.8, -0.1, 0.6), 1.2), ((0.0, 0.5, -1.0), 1.0)]


class Stage:
    """The process's scene: every hand rendered so far, one camera, one light rig."""

    def __init__(self):
        import pyrender

        self.scene = pyrender.Scene(bg_color=[*BACKGROUND, 1.0], ambient_light=[0.35, 0.35, 0.35])
        self.camera = pyrender.OrthographicCamera(xmag=0.1, ymag=0.1, znear=0.01, zfar=10.0)
        self.camera_node = self.scene.add(self.camera, pose=np.eye(4))
        self.lights = []
        for direction, intensity in _LIGHTS:
            light = pyrender.DirectionalLight(color=[1.0, 1.0, 1.0], intensity=intensity)
            self.lights.append((_look_along(-np.asarray(direction, dtype=float)), self.scene.add(light)))
        self.entries: dict[int, _Entry] = {}
        self.shown: _Entry | None = None

    def entry(self, hand) -> _Entry:
        key = id(hand)
        if key not in self.entries:
            self.entries[key] = _Entry(self, hand)
            weakref.finalize(hand, self._forget, key)
        return self.entries[key]

    def _forget(self, key: int) -> None:
        entry = self.entries.pop(key, None)
        if entry is not None:
            if self.shown is entry:
                self.shown = None
            entry.remove(self.scene)

    def render(self, hand, link_poses: dict[str, np.ndarray], width: int, height: int, view: View,
               ssaa: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """A picture of ``hand`` with links at ``link_poses`` (4x4, canonical frame), rendered at ``ssaa`` times
        the size and averaged down: colour ``(height, width, 3)`` uint8 and depth ``(height, width)`` (metres from
        the camera, 0 for background; the nearest of each block)."""

        entry = self.entry(hand)
        if self.shown is not entry:
            if self.shown is not None:
                self.shown.show(False)
            entry.show(True)
            self.shown = entry
        for piece, node in entry.nodes:
            T = link_poses.get(piece.link)
            if T is not None:
                self.scene.set_pose(node, T @ piece.pose)
        pose, xmag, ymag, znear, zfar = entry.framing(hand, view).camera(view, width, height)
        self.camera.xmag, self.camera.ymag = xmag, ymag
        self.camera.znear, self.camera.zfar = znear, zfar
        self.scene.set_pose(self.camera_node, pose)
        for local, node in self.lights:
            light_pose = np.eye(4)
            light_pose[:3, :3] = pose[:3, :3] @ local
            self.scene.set_pose(node, light_pose)
        r = gl.renderer(width * ssaa, height * ssaa)
        color, depth = r.render(self.scene)
        depth = _orthographic_depth(depth, znear, zfar)
        if ssaa > 1:
            color = color.reshape(height, ssaa, width, ssaa, 3).mean(axis=(1, 3)).round().astype(np.uint8)
            depth = np.where(depth > 0, depth, np.inf).reshape(height, ssaa, width, ssaa).min(axis=(1, 3))
            depth[np.isinf(depth)] = 0.0
        return np.ascontiguousarray(color[..., :3]), depth


def _orthographic_depth(depth: np.ndarray, n: float, f: float) -> np.ndarray:
    """Undo pyrender's perspective linearisation of the depth buffer, which is wrong for an orthographic camera:
    recover the NDC depth ``d`` from ``depth = 2nf / (f + n - d (f - n))``; the eye distance is then linear in it."""
    hit = depth > 0
    out = np.zeros_like(depth)
    d = (f + n - 2 * n * f / depth[hit]) / (f - n)
    out[hit] = ((f - n) * d + f + n) / 2
    return out


def _look_along(direction: np.ndarray) -> np.ndarray:
    """A rotation whose -z axis is ``direction`` (pyrender lights shine along their -z)."""
    z = -direction / np.linalg.norm(direction)
    x = np.cross([0.0, 1.0, 0.0], z)
    if np.linalg.norm(x) < 1e-6:
        x = np.array([1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], axis=1)


_stage: Stage | None = None


def stage(width: int = 64, height: int = 64) -> Stage:
    """The process's :class:`Stage` (opens the GL context on first use)."""
    global _stage
    if _stage is None:
        gl.renderer(width, height)  # choose the platform before pyrender is imported
        _stage = Stage()
    return _stage
