"""Load a space from a name, a file or a bundle directory: the one dispatch above `latent` and `bundle`."""

from __future__ import annotations

from pathlib import Path

from xlhand.bundle.store import load_bundle_space
from xlhand.latent.space import HandResolver, Space, registered_hand, resolve_space_path, space_from_file


def load_space(name_or_path: str | Path | None = None, resolver: HandResolver | None = None) -> Space:
    """A shipped space by name (default: the shipped default), a space file, or a VLA bundle directory."""
    path = resolve_space_path(name_or_path)
    if path.is_dir():
        return load_bundle_space(path)
    return space_from_file(path, resolver or registered_hand)
