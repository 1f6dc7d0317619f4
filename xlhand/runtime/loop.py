"""The control loop: a policy's latent chunks, decoded on the hand, streamed to its driver at the bundle's rate
through the safety layer.

- **Chunks ahead of time.** A worker thread asks the policy for the next chunk while the current one plays
  (real-time chunking). The request goes out ``lead`` steps before the current chunk's executed part runs out,
  with the observation of that moment. When the chunk arrives, the steps that passed since the request are
  skipped, so the new chunk starts from where the hand is now. The first ``blend`` steps mix the old chunk's
  remainder into the new one linearly.
- **Time.** Steps are scheduled on a monotonic clock at fixed times ``t0 + k / rate``, never drifting; a late
  step is sent at once and counted.
- **Safety.** Every command goes through :class:`~xlhand.runtime.safety.SafetyLayer`. With no chunk to play (the
  policy is late or failed) the layer's watchdog holds. On a driver error the loop stops, holds the last safe
  command if the driver still takes one, and closes the driver. Ctrl-C and :meth:`ControlLoop.stop` (the
  emergency stop) brake to a halt within the limits, then close the driver.

The policy is any callable ``policy(observation) -> (T, latent_dim)`` latents; an observation is the measured
joints, their latent (the hand's frozen encoder) and the time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from xlhand.runtime.driver import DriverError, HandDriver
from xlhand.runtime.safety import SafetyLayer, SafetyLimits


@dataclass(frozen=True)
class Observation:
    q: np.ndarray  # measured joints (dof,)
    latent: np.ndarray | None  # their latent, when the loop has an encoder
    time: float  # seconds since the loop started


@dataclass
class RunReport:
    steps: int = 0
    chunks: int = 0
    late_steps: int = 0  # steps sent after their scheduled time plus half a period
    policy_errors: list[str] = field(default_factory=list)
    driver_error: str | None = None
    stopped_by: str | None = None  # "seconds" | "stop" | "interrupt" | "driver"
    jitter_ms: dict = field(default_factory=dict)  # p50, p99, max of |send time - scheduled time|
    latency_ms: dict = field(default_factory=dict)  # a new chunk in hand at its step's time -> its command sent
    interventions: dict = field(default_factory=dict)
    record: dict = field(default_factory=dict)  # arrays: t, target, command, measured


class ControlLoop:
    """``policy`` chunks -> ``decode`` (latents -> joint targets) -> safety -> ``driver``, at ``driver.rate_hz``."""

    def __init__(self, driver: HandDriver, policy: Callable[[Observation], np.ndarray],
                 decode: Callable[[np.ndarray], np.ndarray], *,
                 encode: Callable[[np.ndarray], np.ndarray] | None = None,
                 limits: SafetyLimits | None = None, execute: int = 32, lead: int = 8, blend: int = 4,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        if not 1 <= lead < execute:
            raise ValueError(f"lead must be in [1, execute), got lead={lead}, execute={execute}")
        self.driver, self.policy, self.decode, self.encode = driver, policy, decode, encode
        self.limits = limits or SafetyLimits.for_hand(driver.hand)
        self.execute, self.lead, self.blend = execute, lead, blend
        self.clock, self.sleep = clock, sleep
        self.dt = 1.0 / driver.rate_hz
        self._stop = threading.Event()
        self._stop_reason = "stop"

    def stop(self, reason: str = "stop") -> None:
        """The emergency stop (thread- and signal-safe): brake to a halt, hold, close the driver."""
        self._stop_reason = reason
        self._stop.set()

    # -- the policy worker -------------------------------------------------------------------------------------
    def _request(self, obs: Observation, step: int, box: dict) -> None:
        try:
            targets = np.asarray(self.decode(self.policy(obs)), dtype=np.float64)  # the policy's output as it is
            if targets.ndim != 2 or targets.shape[1] != self.driver.dof or len(targets) == 0:
                raise ValueError(f"decoded chunk has shape {targets.shape}, expected (T, {self.driver.dof})")
            box["chunk"] = (step, targets, self.clock())
        except Exception as exc:  # noqa: BLE001 - a failing policy is held by the safety layer, and reported
            box["error"] = f"{type(exc).__name__}: {exc}"

    def _observe(self, t: float) -> Observation:
        q = np.asarray(self.driver.read_state().q, dtype=np.float64)
        lat = np.asarray(self.encode(q), dtype=np.float64) if self.encode is not None else None
        return Observation(q, lat, t)

    def run(self, seconds: float) -> RunReport:
        """Run for ``seconds`` (or until :meth:`stop`, Ctrl-C or a driver error); the driver is closed after."""
        rep = RunReport()
        rec = {"t": [], "target": [], "command": [], "measured": []}
        steps_total = int(round(seconds / self.dt))
        layer: SafetyLayer | None = None
        jitter: list[float] = []
        latency: list[float] = []
        try:
            if not self.driver.connected:
                self.driver.connect()
            q0 = np.asarray(self.driver.read_state().q, dtype=np.float64)
            layer = SafetyLayer(self.limits, self.dt, q0)
            t0 = self.clock()
            chunk: tuple[int, np.ndarray] | None = None  # (step the chunk's row 0 belongs to, targets)
            box: dict = {}
            worker: threading.Thread | None = None

            def ask(step: int) -> threading.Thread:
                box.clear()
                th = threading.Thread(target=self._request, args=(self._observe(step * self.dt), step, box),
                                      daemon=True)
                th.start()
                return th

            worker = ask(0)
            next_ask = None
            first_of_chunk: float | None = None
            for k in range(steps_total):
                due = t0 + k * self.dt  # the schedule never drifts: each step at its own time
                wait = due - self.clock()
                if wait > 0:
                    self.sleep(wait)
                if self.clock() - due > self.dt / 2:
                    rep.late_steps += 1
                if self._stop.is_set():
                    rep.stopped_by = self._stop_reason
                    layer.stop(k * self.dt, self._stop_reason)
                    break
                # a chunk that has arrived replaces the current one, blended
                if worker is not None and not worker.is_alive():
                    worker = None
                    if "error" in box:
                        rep.policy_errors.append(box["error"])
                        next_ask = k + 1  # ask again; meanwhile the safety layer holds
                    elif "chunk" in box:
                        start, targets, ready = box["chunk"]
                        if chunk is not None and self.blend > 0:
                            targets = targets.copy()
                            for i in range(self.blend):
                                j = k + i
                                old_i, new_i = j - chunk[0], j - start
                                if 0 <= old_i < len(chunk[1]) and 0 <= new_i < len(targets):
                                    w = (i + 1) / (self.blend + 1)
                                    targets[new_i] = (1 - w) * chunk[1][old_i] + w * targets[new_i]
                        chunk = (start, targets)
                        rep.chunks += 1
                        first_of_chunk = ready
                        next_ask = start + self.execute - self.lead
                if worker is None and next_ask is not None and k >= next_ask:
                    worker = ask(k)
                    next_ask = None
                target = None
                if chunk is not None and 0 <= k - chunk[0] < len(chunk[1]):
                    target = chunk[1][k - chunk[0]]
                cmd = layer.step(target, k * self.dt)
                try:
                    self.driver.send(cmd)
                    sent_at = self.clock()
                    measured = np.asarray(self.driver.read_state().q, dtype=np.float64)
                except DriverError as exc:
                    rep.driver_error = str(exc)
                    rep.stopped_by = "driver"
                    break
                jitter.append(abs(sent_at - due))
                if first_of_chunk is not None:  # from the chunk being in hand (and due) to its command sent
                    latency.append(max(0.0, sent_at - max(first_of_chunk, due)))
                    first_of_chunk = None
                self._log(rec, k * self.dt, target, cmd, measured)
                rep.steps += 1
            else:
                rep.stopped_by = "seconds"
            if rep.stopped_by not in ("seconds", "driver"):
                self._brake(layer, rep, rec)
        except KeyboardInterrupt:
            rep.stopped_by = "interrupt"
            if layer is not None:
                layer.stop(rep.steps * self.dt, "interrupt")
                try:
                    self._brake(layer, rep, rec)
                except DriverError as exc:
                    rep.driver_error = str(exc)
        finally:
            self.driver.disconnect()
        rep.interventions = dict(layer.counts) if layer is not None else {}
        rep.jitter_ms = _stats(jitter)
        rep.latency_ms = _stats(latency)
        rep.record = {k: np.array(v) for k, v in rec.items()}
        return rep

    def _log(self, rec: dict, t: float, target, cmd: np.ndarray, measured: np.ndarray) -> None:
        rec["t"].append(t)
        rec["target"].append(np.full(self.driver.dof, np.nan) if target is None else target)
        rec["command"].append(cmd)
        rec["measured"].append(measured)

    def _brake(self, layer: SafetyLayer, rep: RunReport, rec: dict) -> None:
        """Commands until the layer has braked to a halt (at most two seconds)."""
        for i in range(int(2.0 / self.dt)):
            before = layer.q.copy()
            cmd = layer.step(None, (rep.steps + i) * self.dt)
            self.driver.send(cmd)
            measured = np.asarray(self.driver.read_state().q, dtype=np.float64)
            self._log(rec, (rep.steps + i) * self.dt, None, cmd, measured)
            if np.allclose(cmd, before, atol=1e-12) and np.allclose(layer.v, 0.0, atol=1e-12):
                break
            self.sleep(self.dt)


def _stats(values: list[float]) -> dict:
    if not values:
        return {}
    a = np.array(values) * 1000.0
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)), "max": float(a.max()),
            "n": len(a)}
