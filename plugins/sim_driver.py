"""The built-in ``sim`` driver, registered through the same ``register_drivers`` hook as third-party drivers."""

from xlhand.plugins.hookspecs import hookimpl
from xlhand.runtime.sim import SimDriver


@hookimpl
def register_drivers(register):
    register("sim", SimDriver)
