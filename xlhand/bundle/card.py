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
"""
