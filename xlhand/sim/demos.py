"""Scripted demonstrations into LeRobotDataset v3 folders: one dataset per hand, successful episodes only.

Each frame holds the joint commands (``action``), the measured joints (``observation.state``), their latents in a
space (``action.latent`` / ``observation.latent``: the hand's frozen encoder mean), the object and wrist poses and
the front camera (``observation.images.front``); each episode's metadata its success, seed, hand and task.
Recording resumes: a folder that already holds a hand's dataset continues it, each task from the seed after the
largest one it holds, until the task has the episodes asked for (or its attempts run out).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from xlhand._util.atomic import write_text_atomic
from xlhand.errors import XlhandError
from xlhand.hand.model import Hand
from xlhand.sim.dataset import DatasetWriter
from xlhand.sim.dataset import Episode as DataEpisode
from xlhand.sim.demonstrator import Episode
from xlhand.sim.pool import Job, run_jobs
from xlhand.sim.tasks import Task, check_applicable
from xlhand.sim.world import CONTROL_HZ

IMAGE_KEY = "observation.images.front"
ATTEMPTS_PER_EPISODE = 3  # a task gives up after this many attempts per episode asked for


def features(hand: Hand, latent_dim: int, image_size: tuple[int, int]) -> dict[str, dict]:
    joints = list(hand.joint_names)
    lat = [f"z{i}" for i in range(latent_dim)]
    pose = ["x", "y", "z", "qw", "qx", "qy", "qz"]
    return {
        "action": {"dtype": "float32", "shape": [hand.dof], "names": joints},
        "observation.state": {"dtype": "float32", "shape": [hand.dof], "names": joints},
        "action.latent": {"dtype": "float32", "shape": [latent_dim], "names": lat},
        "observation.latent": {"dtype": "float32", "shape": [latent_dim], "names": lat},
        "observation.object_pose": {"dtype": "float32", "shape": [7], "names": pose},
        "observation.wrist_pose": {"dtype": "float32", "shape": [7], "names": pose},
        IMAGE_KEY: {"dtype": "video", "shape": [image_size[0], image_size[1], 3],
                    "names": ["height", "width", "channels"]},
    }


@dataclass
class RecordReport:
    root: Path
    added: dict[str, int] = field(default_factory=dict)  # task -> episodes added in this run
    held: dict[str, int] = field(default_factory=dict)  # task -> episodes in the dataset now
    attempts: dict[str, int] = field(default_factory=dict)  # task -> episodes simulated in this run


def _latents(space, hand: Hand, q: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        mean, _ = space.encode(hand.name, torch.as_tensor(q, dtype=torch.float32))
    return mean.numpy()


def to_data_episode(ep: Episode, task: Task, hand: Hand, space) -> DataEpisode:
    frames = {
        "action": ep.actions, "observation.state": ep.states,
        "action.latent": _latents(space, hand, ep.actions), "observation.latent": _latents(space, hand, ep.states),
        "observation.object_pose": ep.object_poses, "observation.wrist_pose": ep.wrist_poses,
        IMAGE_KEY: ep.images,
    }
    return DataEpisode(task=task.instruction, frames=frames,
                       meta={"success": bool(ep.success), "seed": int(ep.seed), "hand": hand.name, "task": task.name})


def record(hand: Hand, tasks: list[Task], episodes: int, root: Path, space, *,
           image_size: tuple[int, int] = (96, 96), workers: int = 1,
           on_attempt: Callable[[str, bool], None] | None = None) -> RecordReport:
    """Add successful scripted episodes of ``tasks`` to the dataset at ``root`` until each task holds
    ``episodes`` of them; resumes what ``root`` already holds. ``workers > 1`` simulates the tasks in that many
    processes: episodes of different tasks then interleave in the dataset, each task's seeds stay in order."""
    for task in tasks:
        check_applicable(task, hand)
    space.hand(hand.name)  # a one-line error when the space has no adapter for this hand
    report = RecordReport(Path(root))
    _check_space_record(Path(root), space.fingerprint)
    with DatasetWriter(root, fps=CONTROL_HZ, features=features(hand, space.latent_dim, image_size),
                       robot_type=hand.name, image_keys=(IMAGE_KEY,)) as writer:
        _write_space_record(Path(root), space.fingerprint, hand.name)
        jobs = []
        for task in tasks:
            mine = [r for r in writer.episodes if r.get("task") == task.name]
            held = len(mine)
            seed = max((int(r["seed"]) for r in mine), default=-1) + 1
            report.added[task.name], report.held[task.name], report.attempts[task.name] = 0, held, 0
            if held < episodes:
                wanted = episodes - held
                jobs.append(Job(0, task, seed, ATTEMPTS_PER_EPISODE * wanted, wanted))
        for k, ep in run_jobs([hand], jobs, workers=workers, render=True, image_size=image_size):
            task = jobs[k].task
            report.attempts[task.name] += 1
            if ep.success:
                writer.add_episode(to_data_episode(ep, task, hand, space))
                report.held[task.name] += 1
                report.added[task.name] += 1
            if on_attempt is not None:
                on_attempt(task.name, ep.success)
    return report


SPACE_RECORD = "meta/xlhand.json"  # the space whose encoders gave the latents (lerobot ignores the file)


def read_space_record(root: Path) -> dict:
    """``{"space_fingerprint", "hand"}`` of a dataset ``xlhand sim demos`` recorded ({} for other datasets)."""
    path = Path(root) / SPACE_RECORD
    if not path.exists():
        return {}
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise XlhandError(f"unreadable ({exc})", path) from None
    if not isinstance(rec, dict):
        raise XlhandError("not a JSON object", path)
    return rec


def _check_space_record(root: Path, fingerprint: str) -> None:
    rec = read_space_record(root)
    if rec and rec.get("space_fingerprint") != fingerprint:
        raise XlhandError(f"its latents come from another space ({str(rec.get('space_fingerprint'))[:12]}, not "
                          f"{fingerprint[:12]}); record into a new folder", root / SPACE_RECORD)


def _write_space_record(root: Path, fingerprint: str, hand: str) -> None:
    if not (root / SPACE_RECORD).exists():
        write_text_atomic(root / SPACE_RECORD, json.dumps({"space_fingerprint": fingerprint, "hand": hand}) + "\n")


def check_output_dir(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise XlhandError("exists and is not a directory", root)
