"""The ``xlhand`` command line: one small typer module per command group over the library."""
