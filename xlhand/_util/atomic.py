"""Atomic file writes: write a temp file beside the target, fsync it, then rename over it.

A reader sees the old file or the complete new one, never a partial write, also after a crash: the data is
flushed to disk before the rename, and the directory after it (best effort). The new file gets the permissions
``open()`` would give it (``0o666`` less the umask); the umask is read without changing it (``os.umask`` can only
be read by setting it, which races with other threads creating files).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from xlhand.errors import XlhandError


@contextlib.contextmanager
def atomic_path(target: str | Path):
    """Yield a temporary path beside ``target`` (same suffix); on success it is renamed onto ``target``.

    Write the file at the yielded path in the body. Afterwards the file is fsynced, given the mode ``0o666 & ~umask``,
    renamed onto ``target`` and the directory fsynced. On any exception the temporary file is removed; an
    ``OSError`` while creating, writing or renaming becomes an :class:`~xlhand.errors.XlhandError` naming ``target``.
    """
    target = Path(target)
    tmp: Path | None = None
    try:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
            os.close(fd)
        except OSError as exc:
            raise _error(target, exc) from exc
        tmp = Path(name)
        try:
            yield tmp
        except OSError as exc:
            raise _error(target, exc) from exc
        try:
            fsync_file(tmp)
            os.chmod(tmp, 0o666 & ~current_umask(target.parent))  # mkstemp makes 0600
            os.replace(tmp, target)
        except OSError as exc:
            raise _error(target, exc) from exc
        tmp = None
        fsync_dir(target.parent)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def check_output_file(target: str | Path, suffixes: tuple[str, ...] = ()) -> Path:
    """Refuse, before any work is done, an output that cannot become a file: a directory, a path under a file,
    or (when ``suffixes`` are given) a type the writer cannot produce."""
    target = Path(target)
    if suffixes and target.suffix.lower() not in suffixes:
        raise XlhandError(f"unsupported output type {target.suffix or '(none)'!r}; use {' or '.join(suffixes)}",
                          target)
    if target.is_dir():
        raise XlhandError("is a directory; give a file name", target)
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise XlhandError(f"cannot write under {parent}: it is not a directory", target)
            break
    return target


def _error(target: Path, exc: OSError) -> XlhandError:
    cause = f"[Errno {exc.errno}] {exc.strerror}" if exc.errno is not None and exc.strerror else str(exc)
    return XlhandError(f"cannot write: {cause}", target)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    """Make the rename durable (best effort: not every platform or filesystem can fsync a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def current_umask(directory: str | Path | None = None) -> int:
    """The process umask, read without setting it.

    Linux reports it in ``/proc/self/status`` (``Umask:`` line, since 4.7). Elsewhere a probe file is created with
    ``0o666`` in ``directory`` (default: the temp dir) and its mode read back.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    probe_dir = Path(directory) if directory is not None else Path(tempfile.gettempdir())
    probe = probe_dir / f".umask-probe-{os.getpid()}-{os.urandom(8).hex()}"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        return 0o666 & ~os.fstat(fd).st_mode  # the bits of 0o666 the umask removed
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(probe)


def write_bytes_atomic(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        Path(tmp).write_bytes(data)


def write_text_atomic(target: str | Path, text: str) -> None:
    write_bytes_atomic(target, text.encode("utf-8"))
