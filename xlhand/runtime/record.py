"""Run records: what a control loop commanded and measured, step by step, in one ``.npz`` file.

Arrays: ``t (T,)`` seconds, ``target (T, dof)`` (NaN where the loop had none), ``command (T, dof)`` (what the
safety layer sent), ``measured (T, dof)``; and as strings: ``hand`` (its name), ``joint_names``, ``meta`` (JSON:
rate, interventions, jitter, latency, how the run ended). Written atomically; read back with checks, so a file
that is not a record is a one-line error.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xlhand._util.atomic import atomic_path
from xlhand.errors import XlhandError

ARRAYS = ("t", "target", "command", "measured")


def write_record(path: str | Path, report, hand, rate_hz: float) -> Path:
    path = Path(path)
    rec = report.record
    meta = {"rate_hz": rate_hz, "interventions": report.interventions, "jitter_ms": report.jitter_ms,
            "latency_ms": report.latency_ms, "stopped_by": report.stopped_by, "steps": report.steps,
            "policy_errors": report.policy_errors, "driver_error": report.driver_error}
    arrays = {k: np.asarray(rec.get(k, np.zeros((0, hand.dof))), dtype=np.float64) for k in ARRAYS}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays, hand=np.array(hand.name), joint_names=np.array(list(hand.joint_names)),
                     meta=np.array(json.dumps(meta)))
    return path


def read_record(path: str | Path) -> dict:
    """``{"t", "target", "command", "measured", "hand", "joint_names", "meta"}`` of a record file."""
    path = Path(path)
    if not path.is_file():
        raise XlhandError("no such file", path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError: not an npz file
        raise XlhandError(f"not a run record ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})",
                          path) from None
    missing = [k for k in (*ARRAYS, "hand", "joint_names", "meta") if k not in data]
    if missing:
        raise XlhandError(f"not a run record: no {', '.join(missing)}", path)
    n, dof = len(data["t"]), len(data["joint_names"])
    for k in ARRAYS[1:]:
        if data[k].shape != (n, dof):
            raise XlhandError(f"{k} has shape {data[k].shape}, expected ({n}, {dof})", path)
    if not np.all(np.isfinite(data["command"])):
        raise XlhandError("the commanded joints hold non-finite values", path)
    out = {k: data[k] for k in ARRAYS}
    out["hand"] = str(data["hand"])
    out["joint_names"] = [str(j) for j in data["joint_names"]]
    try:
        out["meta"] = json.loads(str(data["meta"]))
    except json.JSONDecodeError:
        raise XlhandError("its meta is not JSON", path) from None
    return out
