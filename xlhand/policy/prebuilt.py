"""The policy that ships with the package, for the shipped default space: its weights and the record of how well
it does (``xlhand policy eval`` on the built-in hands, with the demonstrator beside it), which the model card of
every prebuilt bundle shows. ``docs/policy.md`` gives the one command that rebuilds both."""

from __future__ import annotations

import json
from pathlib import Path

WEIGHTS = Path(__file__).parent / "weights"
POLICY_FILE = WEIGHTS / "default.safetensors"
EVAL_FILE = WEIGHTS / "default.eval.json"


def prebuilt_policy() -> Path | None:
    """The shipped policy file, or ``None`` in a checkout that has none."""
    return POLICY_FILE if POLICY_FILE.is_file() else None


def prebuilt_eval() -> dict:
    """The shipped policy's evaluation record (``{}`` when there is none)."""
    if not EVAL_FILE.is_file():
        return {}
    return json.loads(EVAL_FILE.read_text(encoding="utf-8"))
