"""The ``xlhand`` app: command groups combined with ``add_typer``; plugins may add their own commands.

``xlhand --help`` must not import torch (it costs seconds): the command modules import library modules inside their
command functions, and ``xlhand new`` (whose module imports the packaging code at its top) is loaded on first use.
"""

from __future__ import annotations

import importlib
import sys

import typer
from typer.core import TyperGroup

from xlhand.cli import bundle, hands, inspect, onboard, output, plugins, render, space
from xlhand.errors import XlhandError


class _LazyGroup(TyperGroup):
    """A command group whose subcommands come from ``module``'s ``app``, imported when they are first needed."""

    def __init__(self, module: str, **kwargs):
        super().__init__(**kwargs)
        self._module = module
        self._real = None

    def _group(self):
        if self._real is None:
            self._real = typer.main.get_group(importlib.import_module(self._module).app)
        return self._real

    def list_commands(self, ctx):
        return self._group().list_commands(ctx)

    def get_command(self, ctx, name):
        return self._group().get_command(ctx, name)


# name -> (module, one line of help, placed after this command)
_LAZY = {"new": ("xlhand.cli.new", "Create packages from xlhand's templates.", "hands")}


class _Root(TyperGroup):
    """The root group, with the lazily loaded groups of ``_LAZY`` among the commands."""

    def __init__(self, *, commands=None, **kwargs):
        ordered = {}
        for name, cmd in (commands or {}).items():
            ordered[name] = cmd
            for lazy, (module, help_, after) in _LAZY.items():
                if after == name and lazy not in (commands or {}):
                    ordered[lazy] = _LazyGroup(module, name=lazy, help=help_, no_args_is_help=True)
        super().__init__(commands=ordered, **kwargs)


def _version(value: bool) -> None:
    if value:
        from xlhand import __version__

        sys.stdout.write(f"xlhand {__version__}\n")
        raise typer.Exit()


app = typer.Typer(
    name="xlhand",
    help="Bring a new dexterous hand into a shared latent action space.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=_Root,
)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, expose_value=True,
                                 help="Print the version and exit."),
) -> None:
    """Bring a new dexterous hand into a shared latent action space."""


app.add_typer(hands.app, name="hands")
app.command("inspect")(inspect.inspect)
app.command("plugins")(plugins.plugins)
app.command("pretrain")(space.pretrain)
app.command("eval")(space.eval_)
app.add_typer(space.import_app, name="import")
app.add_typer(space.spaces_app, name="spaces")
app.command("onboard")(onboard.onboard)
app.add_typer(bundle.app, name="bundle")
app.add_typer(render.app, name="render")


_plugin_commands_added = False


def _add_plugin_commands() -> None:
    """Let plugins add subcommands (once per process)."""
    global _plugin_commands_added
    if _plugin_commands_added:
        return
    _plugin_commands_added = True
    from xlhand.plugins import manager

    failures = manager.call_each("register_commands", app=app)
    for name, exc in failures.items():
        manager.load_errors[name] = f"register_commands raised {type(exc).__name__}: {exc}"


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: user errors are one line on stderr and exit status 1."""
    output.invocation[:] = list(sys.argv[1:] if argv is None else argv)
    try:
        _add_plugin_commands()
        app(args=argv, prog_name="xlhand")
    except XlhandError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
