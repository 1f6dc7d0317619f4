"""The built-in hands, registered through the same ``register_hands`` hook as third-party plugins."""

from pathlib import Path

from xlhand.plugins.hookspecs import hookimpl

HERE = Path(__file__).parent
BUILTIN = ("ability", "inspire", "xhand", "paxini")


@hookimpl
def register_hands(register):
    for name in BUILTIN:
        register(HERE / name / "hand.toml")
