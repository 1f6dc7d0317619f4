"""Training samples from demonstrations in the LeRobotDataset v3 layout (``xlhand sim demos`` writes them; a
LeRobot user's own recordings with the same features work too).

A sample is one frame: its camera image, the episode's instruction, the current state and the next ``chunk``
actions (from that frame on; past the episode's end the last one repeats, the hand holding its final posture).
A state or action is the latent (``observation.latent`` / ``action.latent``) followed by the arm part of
``xlhand.policy.arm`` (the anchor and the wrist rotation), computed here from the joints and wrist poses with the
recording hand's FK; each episode also gives the fingers its anchor weighs (from its task). Every dataset must come
from the same space (the latents' fingerprint) and the same camera size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xlhand.errors import XlhandError

IMAGE_KEY = "observation.images.front"
NEEDED = ("observation.latent", "action.latent")
POSES = ("action", "observation.state", "observation.wrist_pose")


@dataclass
class Demos:
    """Every frame of the given datasets in memory."""

    images: torch.Tensor  # (N, H, W, 3) uint8
    state: torch.Tensor  # (N, D + 9) observation latents and arm states
    actions: torch.Tensor  # (N, D + 9) action latents and arm actions
    episode_end: torch.Tensor  # (N,) index of the episode's last frame
    instruction: list[str]  # per episode
    frame_episode: torch.Tensor  # (N,) episode number (into ``instruction``)
    hands: list[str]  # per episode
    tasks: list[str]  # per episode (task names where the metadata has them, else the instruction)
    weights: torch.Tensor  # (E, 5) per episode: the anchor's fingertip weights, ``arm.ROLES`` order

    def __len__(self) -> int:
        return len(self.state)

    def chunk(self, idx: torch.Tensor, length: int) -> torch.Tensor:
        """``(B, length, D)`` actions after frames ``idx`` (a frame's row holds the command that led to its
        observation, so the chunk starts at the next row), the last one repeated past the end."""
        steps = idx[:, None] + 1 + torch.arange(length)[None]
        steps = torch.minimum(steps, self.episode_end[idx][:, None])
        return self.actions[steps]

    def batch(self, idx: torch.Tensor, length: int):
        return self.images[idx], [self.instruction[e] for e in self.frame_episode[idx].tolist()], self.state[idx], \
            self.chunk(idx, length), self.weights[self.frame_episode[idx]]


def load_demos(roots: list[Path], *, latent_dim: int | None, space_fingerprint: str | None = None,
               hand_for=None, joint_space: bool = False, exclude: frozenset = frozenset()) -> Demos:
    """Every episode of the datasets at ``roots`` (one-line errors for a folder that is not one, features that are
    missing or of the wrong size, datasets whose cameras differ, or, with ``space_fingerprint``, latents from
    another space). ``hand_for(name)`` gives the recording hand (default: the registry's hand of that name).
    ``joint_space``: the hand's normalised joints take the latents' place (the retargeting baseline; every
    dataset must then be of one hand). ``exclude``: ``(hand, task)`` pairs whose episodes are left out (the
    zero-shot experiment's held-out combinations)."""
    from xlhand.policy.arm import arm_features, role_weights, task_fingers
    from xlhand.registry import load_hand
    from xlhand.sim.dataset import read_dataset
    from xlhand.sim.demonstrator import hand_scale
    from xlhand.sim.demos import SPACE_RECORD, read_space_record
    from xlhand.sim.tasks import TASKS

    hand_for = hand_for or load_hand
    images, state, actions, ends, frame_ep, instr, hands, tasks, weights = [], [], [], [], [], [], [], [], []
    size = None
    offset = 0
    for root in roots:
        data = read_dataset(Path(root))
        if space_fingerprint is not None:
            fp = read_space_record(Path(root)).get("space_fingerprint")
            if fp is None:
                raise XlhandError("cannot tell which space its latents come from (no meta/xlhand.json); record "
                                  "it with `xlhand sim demos`", Path(root))
            if fp != space_fingerprint:
                raise XlhandError(f"its latents come from the space {fp[:12]}, not {space_fingerprint[:12]}",
                                  Path(root) / SPACE_RECORD)
        feats = data.info["features"]
        for key in (*NEEDED, *POSES, IMAGE_KEY):
            if key not in feats:
                raise XlhandError(f"the dataset has no {key!r} feature (record it with `xlhand sim demos`)",
                                  Path(root) / "meta/info.json")
        for key in NEEDED if not joint_space else ():
            if list(feats[key]["shape"]) != [latent_dim]:
                raise XlhandError(f"{key!r} has shape {feats[key]['shape']}, the policy's latents are "
                                  f"{latent_dim}-d", Path(root) / "meta/info.json")
        shape = tuple(feats[IMAGE_KEY]["shape"][:2])
        if size is not None and shape != size:
            raise XlhandError(f"its camera is {shape[0]}x{shape[1]}, the other datasets' {size[0]}x{size[1]}",
                              Path(root))
        size = shape
        name = str(read_space_record(Path(root)).get("hand") or data.info.get("robot_type", ""))
        try:
            hand = hand_for(name)
        except XlhandError as exc:
            raise XlhandError(f"its hand {name!r} is not known here ({exc})", Path(root) / "meta/info.json") from None
        if list(feats["action"]["shape"]) != [hand.dof]:
            raise XlhandError(f"'action' has shape {feats['action']['shape']}, the hand {name!r} has {hand.dof} "
                              "joints", Path(root) / "meta/info.json")
        if joint_space and hands and name != hands[0]:
            raise XlhandError(f"a joint-space policy learns one hand; this dataset is {name!r}, the first "
                              f"{hands[0]!r}", Path(root))
        scale = hand_scale(hand)
        for e, row in enumerate(data.episodes):
            fr = data.frames(e)
            n = len(fr["action.latent"])
            if n == 0:
                continue
            if (name, str(row.get("task"))) in exclude:
                continue
            task = TASKS.get(str(row.get("task")))
            w = role_weights(task_fingers(task, hand.fingers) if task is not None else hand.fingers)
            arm_a = arm_features(hand, fr["action"], fr["observation.wrist_pose"], w, scale)
            arm_s = arm_features(hand, fr["observation.state"], fr["observation.wrist_pose"], w, scale)
            if joint_space:
                za = hand.normalize(torch.as_tensor(fr["action"], dtype=torch.float32)).numpy()
                zs = hand.normalize(torch.as_tensor(fr["observation.state"], dtype=torch.float32)).numpy()
            else:
                za, zs = fr["action.latent"].astype(np.float32), fr["observation.latent"].astype(np.float32)
            images.append(torch.from_numpy(np.ascontiguousarray(fr[IMAGE_KEY])))
            state.append(torch.from_numpy(np.concatenate([zs, arm_s], 1)))
            actions.append(torch.from_numpy(np.concatenate([za, arm_a], 1)))
            weights.append(torch.as_tensor(w, dtype=torch.float32))
            ends.append(torch.full((n,), offset + n - 1, dtype=torch.long))
            frame_ep.append(torch.full((n,), len(instr), dtype=torch.long))
            tasks_of_ep = row.get("tasks") or []
            text = tasks_of_ep[0] if tasks_of_ep else data.tasks[int(fr["task_index"][0])]
            instr.append(str(text))
            hands.append(name)
            tasks.append(str(row.get("task", text)))
            offset += n
    if not instr:
        raise XlhandError("the datasets hold no episodes", Path(roots[0]) if roots else None)
    return Demos(torch.cat(images), torch.cat(state), torch.cat(actions), torch.cat(ends), instr, torch.cat(frame_ep),
                 hands, tasks, torch.stack(weights))


def latent_stats(demos: Demos) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and standard deviation of the actions and states together."""
    z = torch.cat([demos.actions, demos.state])
    return z.mean(0), z.std(0).clamp_min(1e-3)
