"""Named hand poses and pinch poses (thumb tip on another fingertip) found by a short batched IK.

- ``open``: every joint at the value within its limits closest to zero (URDF zero is the extended hand for the
  hands we know; a joint whose range excludes zero sits at the limit nearer zero).
- ``fist``: every joint at the limit farthest from zero (the flexed end for flexion joints).
- ``mid``: the middle of every joint's range.
- pinches: :func:`pinch_poses` runs Adam on the squared thumb-to-finger distance from random starts, in joints
  normalised to [-1, 1] by their limits (so revolute and prismatic joints take alike steps), projecting back into
  the limits after every step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from xlhand.errors import XlhandError

NAMED = ("open", "fist", "mid")
PINCH_STEPS = 150
PINCH_LR = 0.1  # normalised joint units per Adam step
PINCH_TOL = 0.5e-3  # metres: stop early once every row is this close
PINCH_RESTART = 2e-3  # metres: a row farther than this after a descent starts again from a new random start
PINCH_ROUNDS = 3  # descents at most per row


def named_pose(hand, name: str) -> torch.Tensor:
    """``(1, dof)`` configuration ``open``, ``fist`` or ``mid`` (see the module docstring)."""
    lo, hi = hand.lower, hand.upper
    if name == "open":
        q = torch.clamp(torch.zeros_like(lo), lo, hi)
    elif name == "fist":
        q = torch.where(hi.abs() >= lo.abs(), hi, lo)
    elif name == "mid":
        q = (lo + hi) / 2
    else:
        raise XlhandError(f"unknown pose {name!r} (named poses: {', '.join(NAMED)})")
    return q[None].clone()


def _pinch_fingers(hand, finger: str | Sequence[str] | None) -> list[str]:
    if "thumb" not in hand.fingers:
        raise XlhandError(f"hand {hand.name!r} has no thumb, so no pinch poses")
    others = [f for f in hand.fingers if f != "thumb"]
    if not others:
        raise XlhandError(f"hand {hand.name!r} has only a thumb, so no pinch poses")
    wanted = others if finger is None else [finger] if isinstance(finger, str) else list(finger)
    for f in wanted:
        if f not in others:
            raise XlhandError(f"hand {hand.name!r} has no finger {f!r} to pinch with (fingers: {', '.join(others)})")
    return wanted


def pinch_distance(hand, q: torch.Tensor, finger: str | Sequence[str] | None = "index") -> torch.Tensor:
    """Thumb-tip to fingertip distance ``(n,)`` metres for ``q`` ``(n, dof)``; several fingers cycle over rows."""
    fingers = _pinch_fingers(hand, finger)
    tips = hand.fingertips(q)
    t = hand.fingers.index("thumb")
    idx = torch.tensor([hand.fingers.index(fingers[i % len(fingers)]) for i in range(q.shape[0])])
    return (tips[torch.arange(q.shape[0]), idx] - tips[:, t]).norm(dim=-1)


def pinch_poses(hand, n: int, generator: torch.Generator | None = None,
                finger: str | Sequence[str] | None = "index", steps: int = PINCH_STEPS) -> torch.Tensor:
    """``(n, dof)`` in-limit configurations whose thumb tip touches (or comes closest to) a fingertip.

    ``finger``: a role (``"index"``), several roles, or None for all of the hand's non-thumb fingers; row ``i``
    pinches ``fingers[i % len(fingers)]``. Starts are uniform in the limits (``generator`` makes them repeatable);
    each row is optimised independently, for at most ``steps`` Adam steps (fewer once every row is within
    ``PINCH_TOL``); a row stuck farther than ``PINCH_RESTART`` (a local minimum against a limit) starts again from
    a new random configuration, up to ``PINCH_ROUNDS`` times, keeping its best. Check what was reached with
    :func:`pinch_distance`: some fingers cannot reach the thumb on some hands.
    """
    fingers = _pinch_fingers(hand, finger)
    idx = torch.tensor([hand.fingers.index(fingers[i % len(fingers)]) for i in range(n)])
    return _pinch_search(hand, idx, generator, steps, stop_when_any=False)


def pinch_pose(hand, finger: str = "index", generator: torch.Generator | None = None,
               starts: int = 16) -> torch.Tensor:
    """``(1, dof)``: the closest of ``starts`` pinch solutions between the thumb and ``finger`` (the search stops
    as soon as one start is within ``PINCH_TOL``)."""
    _pinch_fingers(hand, finger)
    idx = torch.full((starts,), hand.fingers.index(finger))
    q = _pinch_search(hand, idx, generator, PINCH_STEPS, stop_when_any=True)
    with torch.no_grad():
        d = pinch_distance(hand, q, finger)
    return q[int(d.argmin())][None]


def _pinch_search(hand, idx: torch.Tensor, generator, steps: int, stop_when_any: bool) -> torch.Tensor:
    """Descents from random starts; rows stuck farther than ``PINCH_RESTART`` are tried again from new starts."""
    q, d = _descend(hand, hand.sample(len(idx), generator=generator), idx, steps, stop_when_any)
    for _ in range(PINCH_ROUNDS - 1):
        if stop_when_any and bool((d < PINCH_TOL).any()):
            break
        todo = torch.nonzero(d > PINCH_RESTART).flatten()
        if not len(todo):
            break
        q2, d2 = _descend(hand, hand.sample(len(todo), generator=generator), idx[todo], steps, stop_when_any)
        better = d2 < d[todo]
        q[todo[better]], d[todo[better]] = q2[better], d2[better]
    return q


def _descend(hand, q0: torch.Tensor, idx: torch.Tensor, steps: int, stop_when_any: bool,
             src: torch.Tensor | None = None, aperture: torch.Tensor | None = None):
    """Adam on the squared error between fingertip distances and ``aperture`` (default 0: touching), in normalised
    joints projected onto [-1, 1]. Row ``i`` closes fingertip ``src[i]`` (default: the thumb) onto ``idx[i]``.

    Returns the configurations ``(n, dof)`` and their distances ``(n,)`` in metres."""
    t = torch.full_like(idx, hand.fingers.index("thumb")) if src is None else src
    target = torch.zeros(len(idx)) if aperture is None else aperture
    rows = torch.arange(len(idx))
    x = hand.normalize(q0).requires_grad_(True)
    m = torch.zeros_like(x)
    v = torch.zeros_like(x)
    b1, b2 = 0.9, 0.999
    with torch.enable_grad():
        for step in range(1, steps + 1):
            tips = hand.fingertips(hand.denormalize(x))
            dist = (tips[rows, idx] - tips[rows, t]).norm(dim=-1)
            err = (dist - target).pow(2)
            reached = err.detach() < PINCH_TOL**2
            if bool(reached.any() if stop_when_any else reached.all()):
                break
            (g,) = torch.autograd.grad(err.sum(), x)
            # Adam written out rather than xlhand._util.optim.Adam: a projected step, eps added before the bias
            # correction; the shipped space's templates come from exactly this update, so it stays as it is
            with torch.no_grad():
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                step_size = PINCH_LR * math.sqrt(1 - b2**step) / (1 - b1**step)
                x.sub_(step_size * m / (v.sqrt() + 1e-8)).clamp_(-1.0, 1.0)
    q = hand.denormalize(x.detach()).clamp(hand.lower, hand.upper)
    with torch.no_grad():
        tips = hand.fingertips(q)
        d = (tips[rows, idx] - tips[rows, t]).norm(dim=-1)
    return q, d


def pinch_templates(hand, n: int, generator: torch.Generator | None = None, max_aperture: float = 0.02,
                    steps: int = 100) -> torch.Tensor:
    """``(n, dof)`` training templates: configurations where a finger pair closes to an aperture drawn uniformly
    in ``[0, max_aperture]`` metres (touching, and the near-pinches around it).

    Pairs cycle over thumb -> each finger, or for a hand without a thumb, first finger -> each other finger.
    One descent per row from a uniform start; a pair that cannot reach its aperture keeps its closest attempt.
    """
    fingers = hand.fingers
    if "thumb" in fingers:
        pairs = [("thumb", f) for f in fingers if f != "thumb"]
    else:
        pairs = [(fingers[0], f) for f in fingers[1:]]
    if not pairs or n == 0:
        return hand.sample(n, generator=generator)
    which = [pairs[i % len(pairs)] for i in range(n)]
    src = torch.tensor([fingers.index(a) for a, _ in which])
    dst = torch.tensor([fingers.index(b) for _, b in which])
    aperture = torch.rand(n, generator=generator) * max_aperture
    q, _ = _descend(hand, hand.sample(n, generator=generator), dst, steps, False, src=src, aperture=aperture)
    return q


def pose(hand, name: str, generator: torch.Generator | None = None, finger: str = "index") -> torch.Tensor:
    """``(1, dof)`` for ``random``, ``pinch`` (thumb on ``finger``) or a named pose."""
    if name == "random":
        return hand.sample(1, generator=generator)
    if name == "pinch":
        return pinch_pose(hand, finger=finger, generator=generator)
    return named_pose(hand, name)
