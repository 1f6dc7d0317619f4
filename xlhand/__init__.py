"""xlhand: bring a new dexterous hand into a shared latent action space with one command.

The public names below load lazily, on first use, so that ``import xlhand`` (and ``xlhand --help``) does not
import torch. Inside the package, modules import from the concrete module, never from this facade.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from xlhand._util.revision import package_version

__version__ = package_version()

# public name -> the module that defines it
_PUBLIC = {
    "XlhandError": "xlhand.errors",
    "HandNotFound": "xlhand.errors",
    "Hand": "xlhand.hand.model",
    "HandSpec": "xlhand.hand.spec",
    "ROLES": "xlhand.hand.spec",
    "load_spec": "xlhand.hand.spec",
    "list_hands": "xlhand.registry",
    "load_hand": "xlhand.registry",
    "list_drivers": "xlhand.registry",
    "get_driver": "xlhand.registry",
    "HandDriver": "xlhand.runtime.driver",
    "JointState": "xlhand.runtime.driver",
    "DriverError": "xlhand.runtime.driver",
    "Space": "xlhand.latent.space",
    "load_space": "xlhand.loading",
    "evaluate": "xlhand.latent.metrics",
    "pretrain": "xlhand.training.pretrain",
    "onboard": "xlhand.training.onboard",
    "create_bundle": "xlhand.bundle.store",
    "plug": "xlhand.bundle.store",
    "show_bundle": "xlhand.bundle.store",
}
__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'xlhand' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))


if TYPE_CHECKING:  # for type checkers and IDEs; never executed
    from xlhand.bundle.store import create_bundle, plug, show_bundle
    from xlhand.errors import HandNotFound, XlhandError
    from xlhand.hand.model import Hand
    from xlhand.hand.spec import ROLES, HandSpec, load_spec
    from xlhand.latent.metrics import evaluate
    from xlhand.latent.space import Space
    from xlhand.loading import load_space
    from xlhand.registry import get_driver, list_drivers, list_hands, load_hand
    from xlhand.runtime.driver import DriverError, HandDriver, JointState
    from xlhand.training.onboard import onboard
    from xlhand.training.pretrain import pretrain
