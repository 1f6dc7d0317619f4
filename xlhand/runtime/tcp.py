"""A driver for a line-based TCP protocol, and a device emulator that speaks it: the example of how a vendor
writes a driver that reconnects and reports faults (``docs/plugins.md``).

The protocol, ASCII lines ending in ``\\n``:

- ``HELLO <dof>`` -> ``OK <dof>`` (or ``ERR <why>``): the first line on every connection;
- ``CMD <seq> <q1> ... <qn>``: a joint command numbered by the driver (one per control period), no reply (a
  reply per command would double the latency); a repeated number is a retransmission;
- ``STATE?`` -> ``STATE <q1> ... <qn>``: the measured joints;
- the device may send ``FAULT <why>`` in place of any reply; the driver raises it as a :class:`DriverError`.

:class:`TcpDriver` reconnects when the connection drops (``reconnect_attempts`` tries, ``reconnect_delay_s``
apart), sends its last command again (a command written into a dying connection is lost without an error), and
raises :class:`DriverError` when it cannot reconnect. :class:`DeviceEmulator` runs in a thread on 127.0.0.1;
it tracks commands ideally and checks every command it receives against its limits (position, and velocity and
acceleration as differences over the nominal period), so a test can prove that nothing unsafe reached it. It can
drop its connection on demand, to test reconnection.
"""

from __future__ import annotations

import socket
import threading
import time

import numpy as np

from xlhand.runtime.driver import DriverError, HandDriver, JointState


class TcpDriver(HandDriver):
    def __init__(self, hand, address: tuple[str, int], *, timeout_s: float = 0.5, reconnect_attempts: int = 20,
                 reconnect_delay_s: float = 0.05):
        super().__init__(hand)
        self.address = address
        self.timeout_s = timeout_s
        self.reconnect_attempts = reconnect_attempts
        self.reconnect_delay_s = reconnect_delay_s
        self.reconnects = 0
        self.faults: list[str] = []
        self._sock: socket.socket | None = None
        self._buf = b""
        self._last_cmd: str | None = None
        self._seq = 0

    # -- connection -------------------------------------------------------------------------------------------
    def _open(self) -> None:
        s = socket.create_connection(self.address, timeout=self.timeout_s)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock, self._buf = s, b""
        self._write(f"HELLO {self.dof}")
        reply = self._readline()
        if reply != f"OK {self.dof}":
            s.close()
            self._sock = None
            raise DriverError(f"{self.hand.name}: the device at {self.address[0]}:{self.address[1]} answered "
                              f"{reply!r} to HELLO")

    def connect(self) -> None:
        if self.connected:
            return
        try:
            self._open()
        except OSError as exc:
            raise DriverError(f"{self.hand.name}: cannot connect to {self.address[0]}:{self.address[1]} "
                              f"({exc})") from None
        self.connected = True

    def _reconnect(self, why: str) -> None:
        self.faults.append(f"connection lost ({why})")
        self._close()
        for _ in range(self.reconnect_attempts):
            time.sleep(self.reconnect_delay_s)
            try:
                self._open()
                self.reconnects += 1
                if self._last_cmd is not None:  # it may have died with the connection; a position is idempotent
                    self._write(self._last_cmd)
                return
            except (OSError, DriverError):
                continue
        self.connected = False
        raise DriverError(f"{self.hand.name}: lost the device at {self.address[0]}:{self.address[1]} and could "
                          f"not reconnect ({why})")

    def _close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None

    def disconnect(self) -> None:
        self._close()
        self.connected = False

    # -- lines ------------------------------------------------------------------------------------------------
    def _write(self, line: str) -> None:
        self._sock.sendall(line.encode() + b"\n")

    def _readline(self) -> str:
        while b"\n" not in self._buf:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the device")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        text = line.decode(errors="replace").strip()
        if text.startswith("FAULT"):
            self.faults.append(text)
            raise DriverError(f"{self.hand.name}: the device reported {text}")
        return text

    def _call(self, fn):
        self.require_connected()
        try:
            return fn()
        except (OSError, ConnectionError) as exc:
            self._reconnect(str(exc) or type(exc).__name__)
            return fn()

    # -- the driver interface ---------------------------------------------------------------------------------
    def send(self, q) -> np.ndarray:
        cmd = self.limit(q)
        self._seq += 1
        line = f"CMD {self._seq} " + " ".join(f"{v:.9g}" for v in cmd)
        self._last_cmd = line
        self._call(lambda: self._write(line))
        return cmd

    def read_state(self) -> JointState:
        def ask():
            self._write("STATE?")
            return self._readline()

        text = self._call(ask)
        parts = text.split()
        if len(parts) != self.dof + 1 or parts[0] != "STATE":
            raise DriverError(f"{self.hand.name}: the device sent {text[:80]!r} for STATE?")
        try:
            q = np.array([float(v) for v in parts[1:]])
        except ValueError:
            raise DriverError(f"{self.hand.name}: the device sent {text[:80]!r} for STATE?") from None
        return JointState(q, time.monotonic())


class DeviceEmulator:
    """A hand on 127.0.0.1 that speaks the protocol and checks every command against ``limits`` (a
    :class:`~xlhand.runtime.safety.SafetyLimits`, or any object with ``lower``, ``upper``, ``velocity`` and
    ``acceleration``) at the nominal period ``dt``."""

    def __init__(self, dof: int, limits, dt: float, q0=None, *, tolerance: float = 1e-6):
        self.dof, self.limits, self.dt, self.tol = dof, limits, dt, tolerance
        self.q = np.zeros(dof) if q0 is None else np.asarray(q0, dtype=np.float64).copy()
        self.received = 0
        self.violations: list[str] = []
        self.connections = 0
        self._prev: list[tuple] = []  # (command, sequence number, velocity, its interval) of the last command
        self._server = socket.create_server(("127.0.0.1", 0))
        self.address = self._server.getsockname()
        self._conn: socket.socket | None = None
        self._lock = threading.Lock()
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def drop_connection(self) -> None:
        """Close the current connection (the driver must reconnect)."""
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self._conn.close()
                self._conn = None

    def close(self) -> None:
        self._running = False
        self.drop_connection()
        self._server.close()
        self._thread.join(timeout=2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _check(self, seq: int, q: np.ndarray) -> bool:
        """Limits, and velocity and acceleration over the periods since the previous command, counted by the
        sequence numbers (a command lost with a dropped connection leaves a gap of two periods, not a jump in
        one). False for a retransmission."""
        L, tol = self.limits, self.tol
        if self._prev and seq <= self._prev[-1][1]:
            return False
        if np.any(q < L.lower - tol) or np.any(q > L.upper + tol):
            self.violations.append(f"command {self.received}: outside the limits")
        v = h = None
        if self._prev:
            q1, s1, v1, h1 = self._prev[-1]
            h = (seq - s1) * self.dt
            v = (q - q1) / h
            if np.any(np.abs(v) > L.velocity * (1 + tol) + tol):
                self.violations.append(f"command {self.received}: velocity {np.abs(v).max():.3g}")
            if v1 is not None:
                acc = np.abs(v - v1) / ((h + h1) / 2)  # between the middles of the two intervals
                if np.any(acc > L.acceleration * (1 + tol) + tol):
                    self.violations.append(f"command {self.received}: acceleration {acc.max():.3g}")
        self._prev = [(q, seq, v, h)]
        return True

    def _serve(self) -> None:
        while self._running:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conn = conn
                self.connections += 1
            buf = b""
            try:
                while self._running:
                    data = conn.recv(65536)
                    if not data:
                        break
                    buf += data
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        reply = self._handle(line.decode(errors="replace").strip())
                        if reply is not None:
                            conn.sendall(reply.encode() + b"\n")
            except OSError:
                pass
            finally:
                with self._lock:
                    if self._conn is conn:
                        self._conn = None
                try:
                    conn.close()
                except OSError:
                    pass

    def _handle(self, line: str) -> str | None:
        parts = line.split()
        if not parts:
            return None
        if parts[0] == "HELLO":
            return f"OK {self.dof}" if parts[1:] == [str(self.dof)] else f"ERR this hand has {self.dof} joints"
        if parts[0] == "STATE?":
            return "STATE " + " ".join(f"{v:.9g}" for v in self.q)
        if parts[0] == "CMD":
            try:
                seq = int(parts[1])
                q = np.array([float(v) for v in parts[2:]])
            except (ValueError, IndexError):
                return "FAULT malformed command"
            if q.shape != (self.dof,) or not np.all(np.isfinite(q)):
                self.violations.append(f"command {self.received}: malformed or non-finite")
                return "FAULT malformed command"
            if self._check(seq, q):
                self.received += 1
                self.q = q
            return None
        return f"FAULT unknown request {parts[0]!r}"
