"""Success tables of a policy in physics (hands x tasks, the scripted demonstrator's on the same seeds beside
them) and GIFs of its episodes: what ``xlhand policy eval`` and onboarding's physics check print."""

from __future__ import annotations

from pathlib import Path

from xlhand.policy.rollout import PolicyController


def mean_success(table: dict | None) -> float | None:
    vals = [v for row in (table or {}).values() for v in row.values() if v is not None]
    return round(sum(vals) / len(vals), 4) if vals else None


def evaluate(controller: PolicyController, hands: list, tasks: list, episodes: int, *, seed: int = 0,
             workers: int = 1, demonstrator: bool = True, progress=None) -> dict:
    """``{"success", "demonstrator", "mean", "demonstrator_mean", ...}`` over ``episodes`` seeds a cell."""
    from xlhand.sim.pool import success_table

    model, _ = controller.load()
    size = (model.config.image_size, model.config.image_size)
    table = success_table(hands, tasks, episodes, seed=seed, workers=workers, progress=progress,
                          controller=controller, image_size=size)
    demo = success_table(hands, tasks, episodes, seed=seed, workers=workers,
                         progress=progress) if demonstrator else None
    return {"episodes": episodes, "seed": seed, "execute": controller.execute_steps, "success": table,
            "demonstrator": demo, "mean": mean_success(table), "demonstrator_mean": mean_success(demo)}


def write_gifs(folder: Path, controller: PolicyController, hands: list, tasks: list, seed: int = 0) -> list[Path]:
    """One GIF per hand and applicable task (seed ``seed``), from the policy's camera; the paths written."""
    from xlhand.render.draw import write_animation
    from xlhand.sim.demonstrator import HandPlanner
    from xlhand.sim.tasks import applicable
    from xlhand.sim.world import World

    model, _ = controller.load()
    size = (model.config.image_size, model.config.image_size)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for hand in hands:
        world = World(hand, camera_size=size)
        try:
            planner = HandPlanner(hand, world)
            run = controller.episode_fn(hand)
            for task in tasks:
                if applicable(task, hand):
                    ep = run(world, planner, task, seed, render=True)
                    verdict = "ok" if ep.success else "failed"
                    out.append(write_animation(list(ep.images), folder / f"{hand.name}_{task.name}_{verdict}.gif",
                                               fps=20))
        finally:
            world.close()
    return out
