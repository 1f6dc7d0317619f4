"""xlhand: bring a new dexterous hand into a shared latent action space with one command."""

from .errors import HandNotFound, XlhandError
from .hand import Hand
from .handspec import ROLES, HandSpec, load_spec
from .registry import list_hands, load_hand
from .space import Space, load_space

__version__ = "0.1.0"
__all__ = ["Hand", "HandNotFound", "HandSpec", "ROLES", "XlhandError", "list_hands", "load_hand", "load_spec", "load_space", "Space"]
