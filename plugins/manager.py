"""The plugin manager: built-in plugins plus the ``xlhand`` entry-point group, loaded lazily once.

- ``XLHAND_LOAD_PLUGINS=a,b``: load only these entry points (by entry-point or distribution name); empty loads
  none. Built-in plugins always load.
- ``XLHAND_TRACE_PLUGINS=1``: print every hook call and result to stderr.
A plugin that fails to import is recorded in :data:`load_errors` and skipped, never fatal.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from collections.abc import Callable

import pluggy

from xlhand.plugins import hookspecs

GROUP = "xlhand"
DEFAULT_PLUGINS = ("xlhand.hands", "xlhand.plugins.sim_driver", "xlhand.plugins.mujoco_driver")

pm = pluggy.PluginManager(GROUP)
pm.add_hookspecs(hookspecs)

load_errors: dict[str, str] = {}  # plugin name -> one-line error
_loaded = False


def load_plugins() -> pluggy.PluginManager:
    """Register built-in and installed plugins (once) and return the manager."""
    global _loaded
    if _loaded:
        return pm
    _loaded = True
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    allow = os.environ.get("XLHAND_LOAD_PLUGINS")
    allowed = None if allow is None else {a.strip() for a in allow.split(",") if a.strip()}
    for ep in importlib.metadata.entry_points(group=GROUP):
        dist = ep.dist.name if ep.dist is not None else ""
        if allowed is not None and ep.name not in allowed and dist not in allowed:
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
        except Exception as exc:  # a broken plugin must not break xlhand
            load_errors[ep.name] = f"failed to load: {type(exc).__name__}: {exc}".splitlines()[0]
    if os.environ.get("XLHAND_TRACE_PLUGINS"):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return pm


def plugin_version(name: str) -> str | None:
    """The version of the distribution that provides plugin ``name``, if known."""
    for ep in importlib.metadata.entry_points(group=GROUP):
        if ep.name == name and ep.dist is not None:
            return ep.dist.version
    if name in DEFAULT_PLUGINS:
        try:
            return importlib.metadata.version("xlhand")
        except importlib.metadata.PackageNotFoundError:
            return None
    return None


def call_each(hook_name: str, on_plugin: Callable[[str], None] | None = None, **kwargs) -> dict[str, Exception]:
    """Call a hook on each plugin separately, in registration order (built-ins first), so one plugin raising does
    not stop the others. ``on_plugin(name)`` is told which plugin is about to be called (registries use it to
    attribute what gets registered).

    Returns ``{plugin name: exception}`` for the plugins that raised.
    """
    load_plugins()
    failures: dict[str, Exception] = {}
    plugins = pm.get_plugins()
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        if on_plugin is not None:
            on_plugin(impl.plugin_name)
        others = [p for p in plugins if p is not impl.plugin]
        caller = pm.subset_hook_caller(hook_name, remove_plugins=others)
        try:
            caller(**kwargs)
        except Exception as exc:
            failures[impl.plugin_name] = exc
    return failures


def reset() -> None:
    """Forget all plugins (for tests)."""
    global _loaded
    for plugin in list(pm.get_plugins()):
        pm.unregister(plugin)
    load_errors.clear()
    _loaded = False
