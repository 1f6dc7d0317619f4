"""Where a file xlhand writes came from: the package version and the source revision."""

from __future__ import annotations

import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def package_version() -> str:
    """The installed xlhand's version (``0.0.0+unknown`` in a source tree that was never installed)."""
    try:
        return version("xlhand")
    except PackageNotFoundError:
        return "0.0.0+unknown"


def source_revision() -> str:
    """The git revision of the xlhand source tree, or the package version when not in a checkout."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        if rev.returncode == 0 and rev.stdout.strip():
            return rev.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return f"xlhand {package_version()}"
