"""The built-in ``sim`` driver, registered through the same ``register_drivers`` hook as third-party drivers."""

from xlhand.drivers import SimDriver
from xlhand.plugins.hookspecs import hookimpl


@hookimpl
def register_drivers(register):
    register("sim", SimDriver)
