"""Shared test fixtures: the `../shared` data beside the repository, and plugin isolation.

- `shared` (fixture) / `require_shared()`: the `../shared` folder. Missing, the test is skipped, unless
  `XLHAND_REQUIRE_SHARED=1` (CI), where its absence is a failure.
- `require_library(name, package)`: a system library (found by ``ctypes.util.find_library``). Missing, the test
  is skipped with the package that brings it, unless `XLHAND_REQUIRE_SYSTEM_LIBS=1` (CI installs them all),
  where its absence is a failure.
- Plugins: every test runs with `XLHAND_LOAD_PLUGINS=""`, so third-party plugins installed in the environment are
  never loaded by accident (STYLE convention 12). A test that registers or unregisters plugins asks for
  `fresh_plugins`, which resets the plugin manager and the hand registry before and after it; the autouse fixture
  also resets whenever a previous test left anything but the built-in plugins behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import xlhand.sim  # noqa: F401  (picks MuJoCo's headless GL backend before any test module imports mujoco)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURE_HANDS = SHARED / "fixtures" / "hands"
ASSETS = SHARED / "reference" / "dexlatent" / "Assets"


def require_shared(path: Path = SHARED) -> Path:
    """``path`` (inside `../shared`) if it exists; else skip, or fail when ``XLHAND_REQUIRE_SHARED=1``."""
    if path.exists():
        return path
    message = f"{path} not found (the `shared` folder beside the repository)"
    if os.environ.get("XLHAND_REQUIRE_SHARED") == "1":
        pytest.fail(f"{message}; XLHAND_REQUIRE_SHARED=1 makes this a failure", pytrace=False)
    pytest.skip(message)


def require_library(name: str, package: str) -> None:
    """Skip unless the system library ``lib<name>`` loads; fail instead when ``XLHAND_REQUIRE_SYSTEM_LIBS=1``."""
    import ctypes
    import ctypes.util

    found = ctypes.util.find_library(name)
    try:
        if found:
            ctypes.CDLL(found)
            return
    except OSError:
        pass
    message = f"lib{name} is not installed (apt-get install {package})"
    if os.environ.get("XLHAND_REQUIRE_SYSTEM_LIBS") == "1":
        pytest.fail(f"{message}; XLHAND_REQUIRE_SYSTEM_LIBS=1 makes this a failure", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared() -> Path:
    """The `../shared` folder beside the repository."""
    return require_shared()


def _reset_plugins() -> None:
    from xlhand import registry
    from xlhand.plugins import manager

    manager.reset()
    registry.reset()


def _plugins_dirty() -> bool:
    from xlhand.plugins import manager

    if not manager._loaded:
        return False
    names = {name for name, _ in manager.pm.list_name_plugin()}
    return bool(manager.load_errors) or names != set(manager.DEFAULT_PLUGINS)


@pytest.fixture(autouse=True)
def _isolate_plugins(monkeypatch):
    monkeypatch.setenv("XLHAND_LOAD_PLUGINS", "")
    monkeypatch.delenv("XLHAND_TRACE_PLUGINS", raising=False)
    if _plugins_dirty():
        _reset_plugins()
    yield


@pytest.fixture
def fresh_plugins():
    """Reset the plugin manager and hand registry before and after a test that changes plugins."""
    from xlhand.plugins import manager

    _reset_plugins()
    yield manager
    _reset_plugins()


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for running the real `xlhand` script in a subprocess, with plugins isolated."""
    env = dict(os.environ)
    env["XLHAND_LOAD_PLUGINS"] = ""
    env.pop("XLHAND_TRACE_PLUGINS", None)
    env.update(extra)
    return env


def xlhand_script() -> list[str]:
    """The installed `xlhand` console script beside this interpreter."""
    import sys

    script = Path(sys.executable).parent / "xlhand"
    if not script.exists():
        pytest.fail(f"the xlhand console script is not installed beside {sys.executable}", pytrace=False)
    return [str(script)]


# A small valid hand (a thumb and a two-joint index finger) for tests that need one written to disk.
TINY_URDF = """<?xml version="1.0"?>
<robot name="tiny">
  <link name="palm"><visual><geometry><box size="0.02 0.08 0.08"/></geometry></visual></link>
  <link name="index_1"/><link name="index_2"/><link name="index_tip"/><link name="thumb_1"/><link name="thumb_tip"/>
  <joint name="index_mcp" type="revolute">
    <parent link="palm"/><child link="index_1"/><origin xyz="0 -0.02 0.05"/><axis xyz="0 1 0"/>
    <limit lower="0" upper="1.5" effort="1" velocity="1"/>
  </joint>
  <joint name="index_pip" type="revolute">
    <parent link="index_1"/><child link="index_2"/><origin xyz="0 0 0.04"/><axis xyz="0 1 0"/>
    <limit lower="0" upper="1.5" effort="1" velocity="1"/>
  </joint>
  <joint name="index_tip_joint" type="fixed"><parent link="index_2"/><child link="index_tip"/><origin xyz="0 0 0.03"/></joint>
  <joint name="thumb_cmc" type="revolute">
    <parent link="palm"/><child link="thumb_1"/><origin xyz="0.02 0.03 0.02"/><axis xyz="1 0 0"/>
    <limit lower="-0.5" upper="1.0" effort="1" velocity="1"/>
  </joint>
  <joint name="thumb_tip_joint" type="fixed"><parent link="thumb_1"/><child link="thumb_tip"/><origin xyz="0 0 0.04"/></joint>
</robot>
"""

TINY_TOML = """name = "{name}"
urdf = "tiny.urdf"
description = "a two-finger test hand"

[fingertips]
thumb = "thumb_tip"
index = "index_tip"

[mount]
xyz = [0.0, 0.0, 0.0]
rpy = [0.0, 0.0, 0.0]
"""


def write_tiny_hand(folder: Path, name: str = "tiny", toml: str | None = None) -> Path:
    """Write ``tiny.urdf`` and a ``hand.toml`` (``toml`` replaces the default text) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.urdf").write_text(TINY_URDF)
    path = folder / "hand.toml"
    path.write_text(TINY_TOML.format(name=name) if toml is None else toml)
    return path
