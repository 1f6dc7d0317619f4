"""The policy in closed loop in physics: a chunk at a time, the hand's decoder turning latents into joint
commands and the hand's FK turning the arm part into wrist poses, judged by the task's physical predicate.

An episode starts where every demonstration starts (the hand's home pose, the object drawn from the task's ranges
with the episode's seed, so a seed gives the demonstrator and the policy the same object). Every ``execute``
steps the policy sees the camera, the measured joints and the wrist, and plans the next chunk; the episode lasts
as long as the demonstrator's longest plan for the task plus ``SLACK_SECONDS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from xlhand.policy.arm import arm_features, wrist_from_arm
from xlhand.sim.demonstrator import Episode, HandPlanner, episode_seconds, execute, hand_scale
from xlhand.sim.tasks import Task, check_applicable
from xlhand.sim.world import CONTROL_HZ, World

EXECUTE = 16  # steps of each chunk played before the next is planned (0.8 s of the 3.2 s chunk)
SLACK_SECONDS = 1.0


def instruction(policy, text: str, cache: dict) -> tuple[torch.Tensor, np.ndarray]:
    """Tokens and the anchor's fingertip weights for an instruction, cached (a word outside the policy's
    vocabulary is a one-line error)."""
    from xlhand.policy.model import tokenize

    if text not in cache:
        tok = tokenize(policy.config, [text])
        cache[text] = (tok, policy.finger_weights(tok)[0].double().numpy())
    return cache[text]


@dataclass
class HandRunner:
    """One policy driving one hand: observation -> the next chunk of joint commands and wrist poses."""

    policy: object  # LatentPolicy
    space: object  # Space with this hand's adapter
    hand: object  # Hand
    scale: float = field(default=None)
    blind: bool = False  # see a blank image (an ablation: how much the camera matters)

    def __post_init__(self):
        if self.scale is None:
            self.scale = hand_scale(self.hand)
        self._tokens: dict[str, tuple[torch.Tensor, np.ndarray]] = {}

    def reset(self) -> None:
        """A new episode (the latent policy keeps nothing between chunks)."""

    def instruction(self, text: str) -> tuple[torch.Tensor, np.ndarray]:
        return instruction(self.policy, text, self._tokens)

    def state(self, q: np.ndarray, wrist_pose: np.ndarray, weights: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            z, _ = self.space.encode(self.hand.name, torch.as_tensor(q[None], dtype=torch.float32))
        arm = arm_features(self.hand, q[None], np.asarray(wrist_pose)[None], weights, self.scale)
        return torch.cat([z, torch.as_tensor(arm)], 1)

    def chunk(self, image: np.ndarray, text: str, q: np.ndarray, wrist_pose: np.ndarray,
              generator: torch.Generator | None = None, steps: int | None = None,
              frames: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Joint commands ``(T, dof)``, wrist positions ``(T, 3)`` and rotations ``(T, 3, 3)`` for the next chunk,
        from the camera ``image (H, W, 3)`` uint8, the measured joints ``q`` and the wrist pose ``(7,)``
        (``steps``: flow steps, default the policy's; ``frames``: only the chunk's first frames)."""
        tok, weights = self.instruction(text)
        state = self.state(q, wrist_pose, weights)
        img = torch.as_tensor(np.ascontiguousarray(image))[None]
        if self.blind:
            img = torch.zeros_like(img)
        actions = self.policy.sample(img, tok, state, generator=generator, steps=steps)[0][:frames]
        D = self.policy.config.latent_dim
        with torch.no_grad():
            qs = self.space.decode(self.hand.name, actions[:, :D]).double().numpy()
        lo, hi = self.hand.lower.double().numpy(), self.hand.upper.double().numpy()
        qs = np.clip(qs, lo, hi)
        pos, rot = wrist_from_arm(self.hand, qs, actions[:, D:].double().numpy(), weights, self.scale)
        return qs, pos, rot


def policy_episode(world: World, planner: HandPlanner, task: Task, seed: int, runner: HandRunner, *,
                   execute_steps: int = EXECUTE, render: bool = False) -> Episode:
    """One closed-loop episode of ``task`` (seed ``seed``) with ``runner``'s policy."""
    check_applicable(task, planner.hand)
    rng = np.random.default_rng(seed)
    obj = task.object.sample(rng, planner.scale) if task.object is not None else None
    total = int(round((episode_seconds(task) + SLACK_SECONDS) * CONTROL_HZ))
    gen = torch.Generator().manual_seed(int(seed))

    runner.reset()

    def steps():
        done = 0
        while done < total:
            qs, pos, rot = runner.chunk(world.render(), task.instruction, world.q, world.wrist_pose(), gen,
                                        frames=execute_steps)
            for k in range(min(execute_steps, total - done, len(qs))):
                yield qs[k], pos[k], rot[k]
                done += 1

    return execute(world, planner, task, seed, obj, planner.home(), steps(), render=render)


@dataclass(frozen=True)
class PolicyController:
    """What a simulation worker needs to drive its hands with a policy (picklable: workers load it themselves)."""

    policy: str  # the policy file
    space: str | None  # the space (name, file or bundle) holding every evaluated hand's adapter
    execute_steps: int = EXECUTE
    blind: bool = False  # an ablation: the policy sees a blank image instead of the camera's

    def load(self):
        """The policy and the space, loaded once per process."""
        from xlhand.loading import load_space
        from xlhand.policy.io import load_policy

        if self not in _LOADED:
            space = load_space(self.space)
            model, _ = load_policy(Path(self.policy), space_fingerprint=space.fingerprint)
            _LOADED[self] = (model, space)
        return _LOADED[self]

    def episode_fn(self, hand):
        model, space = self.load()
        runner = HandRunner(model, space, space.hand(hand.name), blind=self.blind)
        n = self.execute_steps

        def run(world, planner, task, seed, render=False):
            return policy_episode(world, planner, task, seed, runner, execute_steps=n, render=render)

        return run


_LOADED: dict[PolicyController, tuple] = {}
