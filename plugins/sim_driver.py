"""The built-in ``sim`` driver, registered through the same ``register_drivers`` hook as third-party drivers."""

from xlhand.plugins.hookspecs import hookimpl


@hookimpl
def register_drivers(register):
    from xlhand.runtime.sim import SimDriver  # here, not at the top: `xlhand --help` loads plugins, not numpy

    register("sim", SimDriver)
