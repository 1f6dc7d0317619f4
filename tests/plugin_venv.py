"""A fresh virtual environment for tests that install plugin packages for real and run xlhand in them.

The environment is made without pip by the running interpreter; a ``.pth`` file adds the running environment's
site-packages (xlhand, editable or not, and its dependencies) to it, so installing a plugin package needs nothing
from the network: ``pip install --no-deps --no-build-isolation --no-index`` (not editable, so package data must
really ship). Building needs setuptools >= 70.1 in the running environment (the ``test`` extra brings it).
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest


class PluginVenv:
    def __init__(self, path: Path):
        self.path = path
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
        self.python = path / "bin" / "python"
        purelib = Path(sysconfig.get_path("purelib", vars={"base": str(path), "platbase": str(path)}))
        parents = [p for p in site.getsitepackages() if Path(p).is_dir()]
        lines = [f"import site; site.addsitedir({p!r})" for p in parents]
        (purelib / "_xlhand_test_parent.pth").write_text("\n".join(lines) + "\n")
        self.site_packages = purelib

    def install(self, *packages: Path) -> None:
        """Install local package folders (one pip run, not editable)."""
        result = subprocess.run(
            [str(self.python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
             "--disable-pip-version-check", *map(str, packages)],
            capture_output=True, text=True, cwd=self.path, env=self.env(),
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def env(self, allow: str | None = None) -> dict[str, str]:
        """The environment for commands: plugins limited to ``allow`` (``None``: every installed plugin)."""
        env = {k: v for k, v in os.environ.items() if k not in ("XLHAND_LOAD_PLUGINS", "XLHAND_TRACE_PLUGINS",
                                                               "PYTHONPATH")}
        env.update(PIP_NO_INPUT="1", COLUMNS="200")  # COLUMNS: rich tables unwrapped
        if allow is not None:
            env["XLHAND_LOAD_PLUGINS"] = allow
        return env

    def run_many(self, *commands: list[str], allow: str | None = None) -> list[tuple[int, str, str]]:
        """Run several ``xlhand`` commands through its ``main()`` in one process here (one start-up, not one per
        command); returns ``(exit code, stdout, stderr)`` per command."""
        result = subprocess.run([str(self.python), "-c", _RUN_MANY, json.dumps(commands)], capture_output=True,
                                text=True, cwd=self.path, env=self.env(allow), timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        return [tuple(r) for r in json.loads(result.stdout)]

    def run(self, *args: str, allow: str | None = None) -> subprocess.CompletedProcess:
        """Run ``xlhand ARGS`` in this environment, in a process of its own."""
        return subprocess.run([str(self.python), "-m", "xlhand.cli.main", *args], capture_output=True, text=True,
                              cwd=self.path, env=self.env(allow), timeout=300)


_RUN_MANY = """
import contextlib, io, json, sys
from xlhand.cli.main import main

def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exc:
            return [exc.code or 0, out.getvalue(), err.getvalue()]
    return [0, out.getvalue(), err.getvalue()]

print(json.dumps([run(argv) for argv in json.loads(sys.argv[1])]))
"""


def require_build_backend() -> None:
    """Skip (fail under CI) when the running environment cannot build packages offline."""
    try:
        import setuptools
    except ImportError:
        version = None
    else:
        version = tuple(int(p) for p in setuptools.__version__.split(".")[:2] if p.isdigit())
    if version is not None and version >= (70, 1):
        return
    try:
        import wheel  # noqa: F401  (older setuptools build wheels with it)

        if version is not None:
            return
    except ImportError:
        pass
    message = f"offline package builds need setuptools >= 70.1 (found {version}); pip install -e '.[test]'"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
