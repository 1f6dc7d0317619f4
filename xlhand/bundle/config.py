"""A bundle's ``config.json``: format constants and reading it."""

from __future__ import annotations

import json
from pathlib import Path

from xlhand.errors import XlhandError

BUNDLE_FORMAT = "xlhand-bundle"


BUNDLE_VERSION = 1


CHUNK_LENGTH = 64


RATE_HZ = 20


def read_config(bundle: Path) -> dict:
    path = bundle / "config.json"
    if not path.is_file():
        raise XlhandError("not an xlhand bundle: no config.json", bundle)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise XlhandError(f"config.json is not valid JSON ({exc})", path) from None
    if not isinstance(config, dict) or config.get("format") != BUNDLE_FORMAT:
        raise XlhandError("not an xlhand bundle config (format is not 'xlhand-bundle')", path)
    if config.get("format_version") != BUNDLE_VERSION:
        raise XlhandError(f"bundle format version {config.get('format_version')!r} is not supported", path)
    return config
