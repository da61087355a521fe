"""The ``llm2silicon`` command line: one entry point, one module per command."""

from __future__ import annotations

import importlib
import sys

import typer
from typer._click import exceptions as click_exceptions  # typer >= 0.20 vendors click

from ..errors import EXIT_BAD_INPUT, InputError

__all__ = ["app", "main"]

app = typer.Typer(
    name="llm2silicon",
    help="From an AI model and a process node to a verified RTL mesh.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)



@app.callback()
def _root() -> None:
    """From an AI model and a process node to a verified RTL mesh."""


#: Modules that register commands on :data:`app` when imported (one per command family).
COMMAND_MODULES = (
    "explorer.cli.nodes",
    "explorer.cli.workloads",
    "explorer.cli.evaluate",
    "explorer.cli.explore",
    "explorer.cli.hwgen",
    "explorer.cli.verify",
    "explorer.cli.flow",
)


def _register() -> None:
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:   # a real missing dependency inside the module
                raise


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad input is one ``error:`` line on stderr and exit code 2."""
    _register()
    command = typer.main.get_command(app)
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        # Without standalone mode click returns the code of a ``typer.Exit`` instead of raising.
        code = command.main(args=args or ["--help"], prog_name="llm2silicon", standalone_mode=False)
    except InputError as e:
        return _fail(str(e))
    except click_exceptions.UsageError as e:
        return _fail(e.format_message().splitlines()[0] if e.format_message() else str(e))
    except typer.Abort:
        return _fail("aborted")
    except typer.Exit as e:
        return int(e.exit_code or 0)
    except (ValueError, TypeError) as e:
        # Validation errors of the config layer (dataclass __post_init__) are input errors.
        return _fail(str(e).splitlines()[0])
    except BrokenPipeError:
        return 0
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


if __name__ == "__main__":
    sys.exit(main())
