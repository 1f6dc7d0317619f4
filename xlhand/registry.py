"""The registry: every plugin's hands and drivers, collected from the hooks once (the only place that calls
``register_hands`` and ``register_drivers``), and the typed getters over them.

Problems (a plugin that failed to import, a malformed hand, a duplicate or invalid name, a raising hook) are
recorded per plugin and shown by ``xlhand plugins``; they are never raised while collecting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from xlhand.errors import HandNotFound, XlhandError
from xlhand.hand.model import Hand, hand_from_spec, spec_for_urdf
from xlhand.hand.spec import NAME_RE, HandSpec, load_spec
from xlhand.plugins import manager
from xlhand.runtime.driver import DriverError, HandDriver

DriverFactory = Callable[[Hand], HandDriver]


@dataclass(frozen=True)
class RegisteredHand:
    name: str
    spec: HandSpec
    plugin: str


@dataclass(frozen=True)
class RegisteredDriver:
    name: str
    factory: DriverFactory
    plugin: str


@dataclass
class Registry:
    hands: dict[str, RegisteredHand] = field(default_factory=dict)
    drivers: dict[str, RegisteredDriver] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)  # plugin name -> problems

    def problem(self, plugin: str, message: str) -> None:
        self.errors.setdefault(plugin, []).append(message)


_registry: Registry | None = None
_registry_key: tuple = ()
_hand_cache: dict[str, Hand] = {}


def registry() -> Registry:
    """Every plugin's hands and drivers, collected once for the set of registered plugins (a plugin registered
    or removed later, as tests do, makes the next call collect again; :func:`reset` forgets them)."""
    global _registry, _registry_key
    manager.load_plugins()
    key = tuple(id(p) for p in manager.pm.get_plugins())
    if _registry is not None and key == _registry_key:
        return _registry
    _hand_cache.clear()
    reg = Registry(errors={name: [msg] for name, msg in manager.load_errors.items()})
    current = {"plugin": ""}

    def register_hand(spec: str | Path | HandSpec) -> None:
        plugin = current["plugin"]
        try:
            if not isinstance(spec, HandSpec):
                if not isinstance(spec, (str, Path)):
                    raise XlhandError(f"register() takes a hand.toml path or a HandSpec, got {type(spec).__name__}")
                spec = load_spec(spec)
        except XlhandError as exc:
            reg.problem(plugin, f"malformed hand: {exc}")
            return
        if spec.name in reg.hands:
            reg.problem(plugin, f"duplicate hand name {spec.name!r} (already registered by {reg.hands[spec.name].plugin})")
            return
        reg.hands[spec.name] = RegisteredHand(spec.name, spec, plugin)

    def register_driver(name, factory) -> None:
        plugin = current["plugin"]
        if not isinstance(name, str) or not NAME_RE.match(name):
            reg.problem(plugin, f"invalid driver name {name!r}")
        elif not callable(factory):
            reg.problem(plugin, f"driver {name!r}: the factory {factory!r} is not callable")
        elif name in reg.drivers:
            reg.problem(plugin, f"duplicate driver name {name!r} (already registered by {reg.drivers[name].plugin})")
        else:
            reg.drivers[name] = RegisteredDriver(name, factory, plugin)

    for hook, register in (("register_hands", register_hand), ("register_drivers", register_driver)):
        failures = manager.call_each(hook, on_plugin=lambda name: current.update(plugin=name), register=register)
        for name, exc in failures.items():
            reg.problem(name, f"{hook} raised {type(exc).__name__}: {exc}")
    _registry, _registry_key = reg, key
    return reg


def reset() -> None:
    """Forget collected hands and drivers (after plugins change; for tests)."""
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
    reg = registry()
    errors = {name: list(errs) for name, errs in reg.errors.items()}
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
                "drivers": sorted(d.name for d in reg.drivers.values() if d.plugin == name),
                "errors": errors.get(name, []) + [msg for msg in [manager.load_errors.get(name)]
                                                  if msg and msg not in errors.get(name, [])],
            }
        )
    for name, errs in errors.items():
        if manager.pm.get_plugin(name) is None:
            rows.append({"name": name, "version": manager.plugin_version(name), "builtin": False, "hooks": [],
                         "hands": [], "drivers": [], "errors": errs})
    return rows


def list_drivers() -> list[str]:
    """Names of every registered driver, sorted."""
    return sorted(registry().drivers)


def get_driver(name: str | None, hand: Hand | str, **options) -> HandDriver:
    """A new, unconnected driver ``name`` (``None``: the hand's ``hand.toml`` ``driver``) for ``hand``.

    ``options`` go to the driver's factory (``SimDriver`` takes ``rate_hz``, ``latency_s``, ``clock``).
    """
    hand = load_hand(hand)
    from_spec = name is None
    name = hand.spec.driver if name is None else name
    reg = registry()
    entry = reg.drivers.get(name)
    if entry is None:
        known = ", ".join(sorted(reg.drivers)) or "none"
        hint = "; some plugins failed, see `xlhand plugins`" if reg.errors else ""
        problem = f"no driver named {name!r} is registered (registered: {known}){hint}"
        if from_spec or name == hand.spec.driver:
            raise DriverError(problem, hand.spec.path or hand.spec.urdf, "driver" if hand.spec.path else None)
        raise DriverError(problem)
    try:
        driver = entry.factory(hand, **options)
    except XlhandError:
        raise
    except Exception as exc:
        raise DriverError(f"driver {name!r} (plugin {entry.plugin}) failed to start for {hand.name}: "
                          f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(driver, HandDriver):
        raise DriverError(f"driver {name!r} (plugin {entry.plugin}) returned {type(driver).__name__}, "
                          "not a HandDriver")
    return driver
