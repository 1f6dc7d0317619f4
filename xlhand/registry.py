"""Typed getters over the ``register_hands`` hook: the only place that calls it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import HandNotFound, XlhandError
from .hand import Hand, hand_from_spec, spec_for_urdf
from .handspec import HandSpec, load_spec


@dataclass(frozen=True)
class RegisteredHand:
    name: str
    spec: HandSpec
    plugin: str


@dataclass
class Registry:
    hands: dict[str, RegisteredHand]
    errors: dict[str, list[str]]  # plugin name -> problems (failed import, duplicate, malformed hand)


_registry: Registry | None = None
_hand_cache: dict[str, Hand] = {}


def registry() -> Registry:
    """Collect every plugin's hands (once). Problems are recorded per plugin, never raised."""
    global _registry
    if _registry is not None:
        return _registry
    from xlhand.plugins import manager

    manager.load_plugins()
    hands: dict[str, RegisteredHand] = {}
    errors: dict[str, list[str]] = {name: [msg] for name, msg in manager.load_errors.items()}
    current = {"plugin": None}

    def register(spec: str | Path | HandSpec) -> None:
        plugin = current["plugin"]
        try:
            if not isinstance(spec, HandSpec):
                if not isinstance(spec, (str, Path)):
                    raise XlhandError(f"register() takes a hand.toml path or a HandSpec, got {type(spec).__name__}")
                spec = load_spec(spec)
        except XlhandError as exc:
            errors.setdefault(plugin, []).append(f"malformed hand: {exc}")
            return
        if spec.name in hands:
            other = hands[spec.name].plugin
            errors.setdefault(plugin, []).append(f"duplicate hand name {spec.name!r} (already registered by {other})")
            return
        hands[spec.name] = RegisteredHand(spec.name, spec, plugin)

    failures = manager.call_each("register_hands", on_plugin=lambda name: current.update(plugin=name),
                                 register=register)
    for name, exc in failures.items():
        errors.setdefault(name, []).append(f"register_hands raised {type(exc).__name__}: {exc}")
    _registry = Registry(hands=hands, errors=errors)
    return _registry


def reset() -> None:
    """Forget collected hands (after plugins change; for tests)."""
    global _registry
    _registry = None
    _hand_cache.clear()


def list_hands() -> list[str]:
    """Names of every registered hand, sorted."""
    return sorted(registry().hands)


def load_hand(name_or_path: str | Path | Hand) -> Hand:
    """A registered hand by name, or a hand from a ``hand.toml`` or a bare URDF (fingertips detected)."""
    if isinstance(name_or_path, Hand):
        return name_or_path
    text = str(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or "/" in text or text.endswith((".toml", ".urdf", ".xml"))
    if not looks_like_path:
        entry = registry().hands.get(text)
        if entry is not None:
            if text not in _hand_cache:
                _hand_cache[text] = hand_from_spec(entry.spec)
            return _hand_cache[text]
        if not Path(text).exists():
            known = ", ".join(list_hands()) or "none"
            raise HandNotFound(f"no hand named {text!r} is registered (registered: {known})")
    path = Path(text)
    if not path.exists():
        raise XlhandError("no such file", path)
    if path.is_dir():
        toml = path / "hand.toml"
        if not toml.is_file():
            raise XlhandError("a directory without hand.toml; give a hand.toml or a URDF file", path)
        path = toml
    if path.suffix == ".toml":
        return hand_from_spec(load_spec(path))
    return hand_from_spec(spec_for_urdf(path))


def plugin_report() -> list[dict]:
    """Every plugin: name, version, hooks it implements, hands and drivers it registered, errors (failed ones
    included)."""
    from xlhand.plugins import manager

    from .drivers import driver_registry

    reg = registry()
    dreg = driver_registry()
    errors = {name: list(errs) for name, errs in reg.errors.items()}
    for name, errs in dreg.errors.items():
        errors.setdefault(name, []).extend(errs)
    rows = []
    for name, plugin in manager.pm.list_name_plugin():
        hooks = sorted(h.name for h in manager.pm.get_hookcallers(plugin) or [])
        rows.append(
            {
                "name": name,
                "version": manager.plugin_version(name),
                "builtin": name in manager.DEFAULT_PLUGINS,
                "hooks": hooks,
                "hands": sorted(e.name for e in reg.hands.values() if e.plugin == name),
                "drivers": sorted(d.name for d in dreg.drivers.values() if d.plugin == name),
                "errors": errors.get(name, []) + [msg for msg in [manager.load_errors.get(name)]
                                                  if msg and msg not in errors.get(name, [])],
            }
        )
    for name, errs in errors.items():
        if manager.pm.get_plugin(name) is None:
            rows.append({"name": name, "version": manager.plugin_version(name), "builtin": False, "hooks": [],
                         "hands": [], "drivers": [], "errors": errs})
    return rows
