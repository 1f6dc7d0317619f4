"""Offscreen OpenGL for pyrender: EGL by default, OSMesa as the fallback, one clear error when neither works.

PyOpenGL binds its platform when ``OpenGL`` is first imported, from ``PYOPENGL_PLATFORM``. Nothing here imports
OpenGL or pyrender until the first picture is asked for; then ``PYOPENGL_PLATFORM`` (``egl`` when unset) is tried,
and if its context cannot be made, OSMesa is tried after dropping the half-imported modules. Both work without a
display. One :class:`pyrender.OffscreenRenderer` serves every picture of the process; its viewport is resized
per call (free on EGL, whose framebuffers resize; OSMesa remakes its context).
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import sys

from xlhand.errors import XlhandError

FALLBACK = "osmesa"
INSTALL_HINT = (
    "install EGL (apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri) or OSMesa (apt-get install libosmesa6)"
)

_renderer = None
_platform: str | None = None


def platform() -> str | None:
    """The OpenGL platform in use (``"egl"`` or ``"osmesa"``), or None before the first picture."""
    return _platform


def renderer(width: int, height: int):
    """The process's offscreen renderer, with its viewport set to ``width x height`` pixels."""
    global _renderer, _platform
    if _renderer is None:
        _renderer, _platform = _open(int(width), int(height))
        atexit.register(close)
    _renderer.viewport_width = int(width)
    _renderer.viewport_height = int(height)
    return _renderer


def close() -> None:
    """Free the GL context (at exit, or to start over)."""
    global _renderer
    if _renderer is not None:
        try:
            _renderer.delete()
        except Exception:  # the context may already be gone at interpreter exit
            pass
        _renderer = None


def _candidates() -> list[str]:
    requested = os.environ.get("PYOPENGL_PLATFORM", "").strip().lower()
    if "OpenGL" in sys.modules:  # someone bound PyOpenGL already: it cannot be switched under them
        return [requested or "egl"]
    order = [requested or "egl"]
    if FALLBACK not in order:
        order.append(FALLBACK)
    return order


def _open(width: int, height: int):
    if importlib.util.find_spec("pyrender") is None:
        raise XlhandError("pictures need pyrender: pip install 'xlhand[render]'")
    errors = []
    for i, name in enumerate(_candidates()):
        if i:
            _forget_opengl()
        os.environ["PYOPENGL_PLATFORM"] = name
        try:
            import pyrender

            return pyrender.OffscreenRenderer(width, height), name
        except Exception as exc:  # PyOpenGL fails in many ways when a library or device is missing
            errors.append(f"{name}: {_reason(exc)}")
    raise XlhandError(f"no offscreen OpenGL ({'; '.join(errors)}); {INSTALL_HINT}")


def _forget_opengl() -> None:
    """Drop OpenGL and pyrender from ``sys.modules`` so the next import binds another platform."""
    for mod in [m for m in sys.modules if m.split(".")[0] in ("OpenGL", "pyrender")]:
        del sys.modules[mod]


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, AttributeError) and "NoneType" in text:
        return "its library could not be loaded"
    if "Invalid device ID" in text:
        return "no EGL device"
    return f"{type(exc).__name__}: {text}"[:200]


def describe() -> str:
    """``"egl: llvmpipe (LLVM 15.0.6, 256 bits)"``: the platform and OpenGL renderer in use (opens the context)."""
    r = renderer(8, 8)
    r._platform.make_current()
    try:
        from OpenGL.GL import GL_RENDERER, glGetString

        name = glGetString(GL_RENDERER)
        name = name.decode() if isinstance(name, bytes) else str(name)
    finally:
        r._platform.make_uncurrent()
    return f"{_platform}: {name}"
