"""Tribot, a three-finger dexterous hand with an opposing thumb (8 DoF, primitive geometry).

Registers the `tribot` hand with xlhand through the `xlhand` entry point in pyproject.toml.
"""

from pathlib import Path

from xlhand.plugins.hookspecs import hookimpl

HAND_TOML = Path(__file__).parent / "hand" / "hand.toml"


@hookimpl
def register_hands(register):
    register(HAND_TOML)


# A hardware driver: subclass xlhand.HandDriver, register it here, and name it in hand.toml's `driver`
# (until then the hand uses the built-in "sim" driver). See docs/plugins.md in xlhand.
#
# from xlhand import HandDriver
#
# class TribotDriver(HandDriver):
#     rate_hz = 50.0
#     def connect(self): ...
#     def read_state(self): ...
#     def send(self, q): ...
#     def disconnect(self): ...
#
# @hookimpl
# def register_drivers(register):
#     register("tribot", TribotDriver)
