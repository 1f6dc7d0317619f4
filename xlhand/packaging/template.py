"""Render the plugin template (``templates/hand-plugin``): ``{{ name }}`` placeholders in names and contents."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from xlhand.errors import XlhandError

TEMPLATE = "hand-plugin"
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")


def template_root(template: str = TEMPLATE):
    """The template folder shipped in the package (a :class:`importlib.resources` traversable)."""
    return resources.files("xlhand.templates").joinpath(template)


def render_template(template, dest: Path, variables: dict[str, str]) -> list[str]:
    """Render every file under ``template`` into ``dest`` (created); returns the relative paths written.

    Placeholders are substituted in file and folder names and in contents. Hidden files, ``__pycache__`` and
    ``*.pyc`` (which an install may add beside the template) are skipped.
    """

    def fill(text: str, where: str) -> str:
        def sub(m: re.Match) -> str:
            if m.group(1) not in variables:
                raise XlhandError(f"unknown template variable {{{{{m.group(1)}}}}}", where)
            return variables[m.group(1)]

        return PLACEHOLDER.sub(sub, text)

    written = []

    def walk(node, rel: Path) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.name.startswith(".") or child.name == "__pycache__" or child.name.endswith(".pyc"):
                continue
            target = rel / fill(child.name, str(rel / child.name))
            if child.is_dir():
                walk(child, target)
                continue
            out = dest / target
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(fill(child.read_text(encoding="utf-8"), f"template {rel / child.name}"), encoding="utf-8")
            written.append(target.as_posix())

    dest.mkdir(parents=True, exist_ok=True)
    walk(template, Path())
    return written
