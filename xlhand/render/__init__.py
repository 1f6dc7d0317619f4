"""Pictures of hands: offscreen pyrender (EGL, or OSMesa), labelled grids, latent decodes and animations.

Every hand is shown the same way round: in the canonical hand frame, looking at the palm from a three-quarter
view, fingers up, thumb on the image's right (see :mod:`xlhand.render.scene`). Fingertip markers use one colour
per finger (thumb red, index green, middle blue, ring gold, little purple); a marker drawn hollow is hidden
behind the hand. Pinch lines join the thumb tip to each fingertip.

Needs the ``render`` extra (pyrender-maintained, PyOpenGL 3.1.10, Pillow, imageio). No display is needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from xlhand.errors import XlhandError
from xlhand.hand.poses import named_pose, pose
from xlhand.registry import load_hand
from xlhand.render.draw import FINGER_RGB, grid, overlay, write_animation, write_image
from xlhand.render.geometry import RenderWarning
from xlhand.render.scene import View

__all__ = [
    "FINGER_RGB",
    "RenderWarning",
    "View",
    "render_animation",
    "render_decode_grid",
    "render_frames",
    "render_grid",
    "render_hand",
    "render_interpolation",
    "write_image",
]

DEFAULT_VIEW = View()


def _hand(hand):
    if isinstance(hand, (str, Path)):
        return load_hand(hand)
    return hand


def _as_batch(hand, q) -> torch.Tensor:
    """``q`` as ``(B, dof)`` float32 (None: the ``open`` pose)."""
    if q is None:
        return named_pose(hand, "open")
    q = torch.as_tensor(np.asarray(q.detach().cpu() if isinstance(q, torch.Tensor) else q, dtype=np.float32))
    if q.ndim == 1:
        q = q[None]
    if q.ndim != 2 or q.shape[1] != hand.dof:
        raise XlhandError(f"{hand.name}: a configuration needs {hand.dof} joint values, got shape {tuple(q.shape)}")
    if not torch.isfinite(q).all():
        raise XlhandError(f"{hand.name}: the configuration has non-finite joint values")
    return q


def _frames_of(hand, q: torch.Tensor, width: int, height: int, view: View, markers: bool, pinch_lines: bool,
               ssaa: int) -> Iterator[np.ndarray]:
    """Pictures of ``hand`` at each row of ``q`` ``(B, dof)``; forward kinematics runs once for the batch."""
    from xlhand.render.scene import stage

    st = stage(width, height)
    with torch.no_grad():
        poses = {k: v.double().numpy() for k, v in hand.link_poses(q).items()}
        tips = hand.fingertips(q).double().numpy()
    entry = st.entry(hand)
    for b in range(q.shape[0]):
        color, depth = st.render(hand, {k: v[b] for k, v in poses.items()}, width, height, view, ssaa=ssaa)
        if markers or pinch_lines:
            framing = entry.framing(hand, view)
            px, tip_depth = framing.project(view, width, height, tips[b])
            occluded = _occluded(px, tip_depth, depth, tol=0.06 * framing.size)
            color = overlay(color, px, hand.fingers, markers=markers, pinch_lines=pinch_lines, occluded=occluded)
        yield color


def _occluded(px: np.ndarray, tip_depth: np.ndarray, depth: np.ndarray, tol: float) -> np.ndarray:
    h, w = depth.shape
    out = np.zeros(len(px), dtype=bool)
    for i, (x, y) in enumerate(px):
        xi, yi = int(x), int(y)
        if 0 <= xi < w and 0 <= yi < h:
            d = depth[yi, xi]
            out[i] = 0 < d < tip_depth[i] - tol
    return out


def render_hand(hand, q=None, *, size: int | tuple[int, int] = 512, markers: bool = False,
                pinch_lines: bool = False, view: View = DEFAULT_VIEW, ssaa: int = 2) -> np.ndarray:
    """A picture ``(H, W, 3)`` uint8 of one hand at ``q`` (``(dof,)`` or ``(1, dof)``; None: the open pose).

    ``hand``: a :class:`~xlhand.Hand` or anything :func:`xlhand.load_hand` takes. ``size``: pixels (square) or
    ``(width, height)``. ``ssaa``: supersampling factor for smooth edges (cost grows with its square).
    """
    hand = _hand(hand)
    width, height = (size, size) if isinstance(size, int) else size
    q = _as_batch(hand, q)
    return next(_frames_of(hand, q[:1], width, height, view, markers, pinch_lines, ssaa))


def render_trajectory(hand, qs, *, size: int | tuple[int, int] = 256, markers: bool = False,
                      view: View = DEFAULT_VIEW, ssaa: int = 1) -> Iterator[np.ndarray]:
    """Pictures of one hand at each row of ``qs (T, dof)`` (a recorded run, a decoded chunk), one per row."""
    hand = _hand(hand)
    width, height = (size, size) if isinstance(size, int) else size
    yield from _frames_of(hand, _as_batch(hand, qs), width, height, view, markers, False, ssaa)


def render_grid(cells: Sequence[tuple], *, size: int = 256, columns: int | None = None, title: str | None = None,
                markers: bool = True, pinch_lines: bool = False, view: View = DEFAULT_VIEW,
                ssaa: int = 2) -> np.ndarray:
    """Several hands side by side, each labelled: ``cells`` is a list of ``(hand, q, label)``."""
    images, labels = [], []
    for hand, q, label in cells:
        images.append(render_hand(hand, q, size=size, markers=markers, pinch_lines=pinch_lines, view=view,
                                  ssaa=ssaa))
        labels.append(str(label))
    return grid(images, labels, columns=columns, title=title)


def render_frames(hands: Sequence, qs: Sequence, labels: Sequence[str], *, size: int = 256,
                  columns: int | None = None, titles: Sequence[str] | None = None, markers: bool = True,
                  pinch_lines: bool = False, view: View = DEFAULT_VIEW, ssaa: int = 1) -> Iterator[np.ndarray]:
    """Animation frames: grid ``t`` shows ``hands[k]`` at ``qs[k][t]`` (each ``qs[k]`` is ``(T, dof_k)``).

    Forward kinematics runs once per hand for all ``T`` frames; ``ssaa`` is 1 here (animations favour speed).
    """
    hands = [_hand(h) for h in hands]
    qs = [_as_batch(h, q) for h, q in zip(hands, qs, strict=True)]
    steps = {q.shape[0] for q in qs}
    if len(steps) != 1:
        raise ValueError(f"every hand needs the same number of frames, got {sorted(steps)}")
    streams = [_frames_of(h, q, size, size, view, markers, pinch_lines, ssaa) for h, q in zip(hands, qs, strict=True)]
    for t, images in enumerate(zip(*streams, strict=True)):
        yield grid(list(images), list(labels), columns=columns, title=titles[t] if titles else None)


def render_animation(frames: Iterable[np.ndarray], path: str | Path, fps: float = 16.0) -> Path:
    """Write frames to ``path`` (.gif or .mp4), atomically (a temporary file renamed at the end)."""
    return write_animation(frames, path, fps=fps)


# ---------------------------------------------------------------------------------------------------------------
# The latent space, seen


def _source_pose(space, source: str, q, generator, finger: str = "index") -> torch.Tensor:
    hand = space.hand(source)
    if isinstance(q, str):
        return pose(hand, q, generator=generator, finger=finger)
    return _as_batch(hand, q)


def _targets(space, targets) -> list[str]:
    if targets is None or targets == "all":
        return list(space.hands)
    names = [t.strip() for t in targets.split(",")] if isinstance(targets, str) else list(targets)
    unknown = [t for t in names if t not in space.hands]
    if unknown:
        raise XlhandError(f"hand(s) {', '.join(unknown)} not in the space (its hands: {', '.join(space.hands)})")
    return names


def render_decode_grid(space, source: str, q="random", targets=None, *, seed: int = 0, finger: str = "index",
                       size: int = 256, markers: bool = True, pinch_lines: bool = True, view: View = DEFAULT_VIEW,
                       ssaa: int = 2) -> np.ndarray:
    """One latent decoded on every target hand, beside the source pose it came from.

    ``q``: a configuration of ``source`` or a pose name (``random``, ``pinch``, ``open``, ``fist``, ``mid``);
    the latent is the posterior mean of ``space.encode(source, q)``; ``seed`` fixes random and pinch poses,
    ``finger`` says which finger a pinch pose puts on the thumb. ``targets``: hand names, a comma-separated
    string, or None/"all" for every hand of the space.
    """
    if source not in space.hands:
        raise XlhandError(f"hand {source!r} is not in the space (its hands: {', '.join(space.hands)})")
    gen = torch.Generator().manual_seed(seed)
    q_src = _source_pose(space, source, q, gen, finger)[:1]
    with torch.no_grad():
        z, _ = space.encode(source, q_src)
        cells = [(space.hand(source), q_src, f"{source} (source)")]
        for name in _targets(space, targets):
            cells.append((space.hand(name), space.decode(name, z), f"decoded: {name}"))
    label = q if isinstance(q, str) else "given"
    return render_grid(cells, size=size, markers=markers, pinch_lines=pinch_lines, view=view, ssaa=ssaa,
                       title=f"one latent ({label} {source} pose) decoded on each hand")


def interpolation_latents(space, source: str, frames: int, seed: int = 0, start: str = "random",
                          end: str = "pinch", finger: str = "index") -> torch.Tensor:
    """``(frames, latent_dim)``: a straight line between the latents (posterior means) of two ``source`` poses."""
    gen = torch.Generator().manual_seed(seed)
    qa = _source_pose(space, source, start, gen, finger)[:1]
    qb = _source_pose(space, source, end, gen, finger)[:1]
    with torch.no_grad():
        za, _ = space.encode(source, qa)
        zb, _ = space.encode(source, qb)
    t = torch.linspace(0.0, 1.0, frames, dtype=za.dtype)[:, None]
    return (1 - t) * za + t * zb


def render_interpolation(space, hands: Sequence[str] | str | None = None, frames: int = 64, seed: int = 0, *,
                         source: str | None = None, start: str = "random", end: str = "pinch",
                         finger: str = "index", size: int = 256,
                         markers: bool = True, pinch_lines: bool = True, view: View = DEFAULT_VIEW,
                         ssaa: int = 1) -> Iterator[np.ndarray]:
    """Animation frames of a latent path decoded on several hands at once.

    The path runs straight from the latent of a ``start`` pose of ``source`` (default: the first hand) to that of
    an ``end`` pose (pose names as in :func:`render_decode_grid`); each frame decodes the same latent on every
    hand in ``hands`` (default: all of the space's).
    """
    names = _targets(space, hands)
    source = source or names[0]
    if source not in space.hands:
        raise XlhandError(f"hand {source!r} is not in the space (its hands: {', '.join(space.hands)})")
    z = interpolation_latents(space, source, frames, seed=seed, start=start, end=end, finger=finger)
    with torch.no_grad():
        qs = [space.decode(name, z) for name in names]
    titles = [f"latent {start} -> {end} of {source}   {t + 1}/{frames}" for t in range(frames)]
    return render_frames([space.hand(n) for n in names], qs, names, size=size, titles=titles, markers=markers,
                         pinch_lines=pinch_lines, view=view, ssaa=ssaa)
