"""The one error type users see: a single line naming the file (and key) and the problem."""

from __future__ import annotations

from pathlib import Path


class XlhandError(Exception):
    """An error in user input. ``str(err)`` is one line: ``FILE: KEY: problem``.

    The CLI prints it without a traceback and exits non-zero; library users can catch it.
    """

    def __init__(self, problem: str, path: str | Path | None = None, key: str | None = None):
        self.problem = " ".join(str(problem).split())  # always one line
        self.path = str(path) if path is not None else None
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [p for p in (self.path, self.key) if p]
        return ": ".join(parts + [self.problem])


class HandNotFound(XlhandError):
    """A hand name that no plugin registered and that is not a path."""
