"""Physics: any hand in MuJoCo, a scene and a task suite, scripted demonstrations and LeRobot datasets."""

import os

# MuJoCo binds its OpenGL backend when first imported; headless machines need EGL (the libraries CI installs)
if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"
