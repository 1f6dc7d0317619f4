"""The generated model card (``README.md``) of a bundle."""

from __future__ import annotations


def model_card(config: dict) -> str:
    hands = config.get("hands", {})
    rows = "\n".join(
        f"| {name} | {'space' if e.get('adapter') == 'space' else e.get('adapter')} | "
        f"{next(iter(e.get('kinematics', {}).values()), '')} |"
        for name, e in hands.items()
    )
    return f"""---
library_name: xlhand
tags: [robotics, dexterous-manipulation, latent-actions, vla]
---
# xlhand VLA bundle

A latent-action bundle made by xlhand: policies emit chunks of {config.get('chunk_length')} latent actions
(dimension {config.get('latent_dim')}) at {config.get('rate_hz')} Hz; each hand's decoder turns them into joint
commands.

- space fingerprint: `{config.get('space_fingerprint')}`
- policy: {config.get('policy') or 'none yet'}

| hand | adapter | kinematics |
|---|---|---|
{rows}

Load with `xlhand.load_space("<this directory>")`; add a hand with `xlhand onboard HAND --bundle <this directory>`.
{_policy_section(config)}"""


def _table(success: dict, demo: dict | None) -> str:
    tasks = sorted({t for row in success.values() for t in row})
    head = "| hand | " + " | ".join(tasks) + " |\n|---|" + "---|" * len(tasks)
    rows = []
    for hand, row in success.items():
        cells = []
        for t in tasks:
            v = row.get(t)
            d = (demo or {}).get(hand, {}).get(t)
            cells.append("n/a" if v is None else f"{v:.2f}" + (f" ({d:.2f})" if d is not None else ""))
        rows.append(f"| {hand} | " + " | ".join(cells) + " |")
    return head + "\n" + "\n".join(rows)


def _policy_section(config: dict) -> str:
    info = config.get("policy_info")
    if not config.get("policy") or not info:
        return ""
    tr = info.get("training", {})
    data = tr.get("data", {})
    steps = tr.get("train", {}).get("steps")
    ev = info.get("eval", {})
    out = f"""
## Policy (`{config['policy']}`)

Image (front camera) + instruction + current state -> the next {config.get('chunk_length')} actions: a latent
and the hand-free wrist action (anchor fingertips' position, wrist rotation). Flow matching, an action expert in
the style of pi0.

- Trained on scripted demonstrations in MuJoCo: {data.get('episodes', '?')} episodes, {data.get('frames', '?')}
  frames, {steps if steps is not None else '?'} steps; hands: {', '.join(tr.get('hands', []))}; tasks:
  {', '.join(tr.get('tasks', []))}.
- Words outside the training instructions are refused; so is a space with another fingerprint.
"""
    if ev.get("success"):
        out += f"""
Success in physics (`xlhand policy eval`, {ev.get('episodes')} episodes a cell, the scripted demonstrator's in
brackets):

{_table(ev['success'], ev.get('demonstrator'))}
"""
    out += """
Limits: trained in simulation only, on one table-top scene with one object at a time and the tasks above; the
wrist is moved by an ideal mocap body, not an arm. On hardware, start in `xlhand run` with its safety layer.
"""
    return out
