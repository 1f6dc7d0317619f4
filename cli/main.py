"""The ``xlhand`` app: command groups combined with ``add_typer``; plugins may add their own commands.

``xlhand --help`` must not import torch (it costs seconds): the command modules import library modules inside their
command functions.
"""

from __future__ import annotations

import sys

from typer._click import exceptions as click  # typer vendors click; its usage errors live here
import typer

from xlhand.cli import bundle, hands, inspect, new, onboard, output, plugins, policy, render, sim, space
from xlhand.errors import XlhandError


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
)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, expose_value=True,
                                 help="Print the version and exit."),
) -> None:
    """Bring a new dexterous hand into a shared latent action space."""


app.add_typer(hands.app, name="hands")
app.add_typer(new.app, name="new")
app.command("inspect")(inspect.inspect)
app.command("plugins")(plugins.plugins)
app.command("pretrain")(space.pretrain)
app.command("eval")(space.eval_)
app.add_typer(space.import_app, name="import")
app.add_typer(space.spaces_app, name="spaces")
app.command("onboard")(onboard.onboard)
app.add_typer(bundle.app, name="bundle")
app.add_typer(render.app, name="render")
app.add_typer(sim.app, name="sim")
app.add_typer(policy.app, name="policy")


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
        # standalone_mode=False: click hands usage errors to us, so they are one line like every other error
        code = app(args=argv, prog_name="xlhand", standalone_mode=False)
    except XlhandError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(1) from None
    except click.NoArgsIsHelpError as exc:  # a bare group: its help, as click would print it
        sys.stdout.write(exc.format_message() + "\n")
        raise SystemExit(2) from None
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "xlhand"
        sys.stderr.write(f"error: {command}: {exc.format_message()} (see --help)\n")
        raise SystemExit(exc.exit_code) from None
    except click.ClickException as exc:
        sys.stderr.write(f"error: {exc.format_message()}\n")
        raise SystemExit(exc.exit_code) from None
    except (KeyboardInterrupt, typer.Abort):
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    raise SystemExit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
