"""The `survey-pipeline` command. Each sub-command lives in its own module and registers on `app`."""

import gc

import typer

app = typer.Typer(
    name="survey-pipeline",
    help="Validate, code and reconcile coaching-feedback survey exports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str) -> None:
    """One line on stderr, exit code 1, no traceback: how every command reports bad input."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


@app.callback()
def _root() -> None:
    """Validate, code and reconcile coaching-feedback survey exports."""


def _register() -> None:
    # Imported for their side effect: each module adds its commands to `app`.
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


_register()


def main() -> None:
    try:
        app()
    finally:
        # The interpreter's collections at exit would walk every object the command left
        # behind, to free memory the process is about to give back anyway: 3-4 s after
        # `survey-pipeline run` on the sample. Objects are still freed when their last
        # reference goes; only garbage in reference cycles is left to the OS.
        gc.freeze()
