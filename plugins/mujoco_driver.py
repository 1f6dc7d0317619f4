"""The built-in ``mujoco`` driver (the hand in physics), registered through ``register_drivers`` like any plugin."""

from xlhand.plugins.hookspecs import hookimpl


@hookimpl
def register_drivers(register):
    from xlhand.sim.driver import MujocoDriver  # here: the driver list must not import MuJoCo

    register("mujoco", MujocoDriver)
