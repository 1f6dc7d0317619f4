"""The settings of one fit (:class:`FitConfig`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FitConfig:
    steps: int = 3000
    batch: int = 1024
    lr: float = 2e-3
    lr_final: float = 1e-4  # cosine decay from lr to lr_final
    pinch_probability: float = 0.5
    templates: int = 2048  # pinch templates per hand
    template_noise: float = 0.02  # std of noise added to a template, normalised joint units
    pool: int = 32768  # precomputed samples per frozen source hand
    checkpoint_every: int = 250
    seed: int = 0
