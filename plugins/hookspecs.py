"""Every xlhand hook. Collection hooks take a ``register`` callback; docs: ``docs/plugins.md``."""

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("xlhand")
hookimpl = HookimplMarker("xlhand")


@hookspec
def register_hands(register):
    """Register hands: call ``register(path_to_hand_toml)`` once per hand the plugin provides."""


@hookspec
def register_drivers(register):
    """Register hand drivers: call ``register(name, factory)``; ``factory(hand)`` returns a ``HandDriver``."""


@hookspec
def register_commands(app):
    """Add subcommands to the ``xlhand`` typer app (``app.command()`` or ``app.add_typer``)."""
