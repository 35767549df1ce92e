"""`scalesim` command line (typer). One module per command under scalesim/cli/, each defining
`command(...)`: a typed function that reads its options once into domain values and calls the domain
code. Modules import only typer and the light option helpers at module level, so `scalesim --help`
and every `scalesim X --help` start without TensorFlow (or pandas).

Adding a command: write scalesim/cli/<name>.py with a `command` function (its docstring's first line
is the one-line help), or a `typer.Typer` named `app` for sub-commands, and add "<name>" to COMMANDS
below (/tmp/coord/redesign.md has the recipe)."""
import importlib
import sys

import typer

from ..errors import ScalesimError

# The order is the pipeline's: measure/train -> fit -> validate / predict / simulate -> report.
COMMANDS = ("doctor", "train", "measure", "sweep", "fit", "validate", "predict", "simulate", "report", "cluster")

try:  # recent typer vendors click as typer._click
    from typer._click.exceptions import ClickException, UsageError as ClickUsageError
except ImportError:  # pragma: no cover - typer on click
    from click.exceptions import ClickException, UsageError as ClickUsageError
from typer import Abort


def _version(value: bool):
    if value:
        from .. import __version__

        print(f"scalesim {__version__}")
        raise typer.Exit()


def build_app() -> typer.Typer:
    app = typer.Typer(name="scalesim", add_completion=True, pretty_exceptions_enable=False,
                      context_settings={"help_option_names": ["-h", "--help"]},
                      help="Predict how data-parallel Horovod training scales: measure -> fit -> "
                           "validate / predict / simulate -> report.")

    @app.callback()
    def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                           help="print the version and exit")):
        pass

    for name in COMMANDS:
        mod = importlib.import_module(f"{__name__}.{name}")
        if hasattr(mod, "app"):  # a command with sub-commands (cluster up|status|exec|down)
            app.add_typer(mod.app, name=name)
        else:
            app.command(name)(mod.command)
    return app


def _command_name(argv) -> str:
    return next((a for a in argv if a in COMMANDS), "")


def _one_line(text: str) -> str:
    return "; ".join(s.strip() for s in str(text).strip().splitlines() if s.strip())


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd = typer.main.get_command(build_app())
    if not argv:  # the overview, but as an error: nothing was asked
        cmd.main(args=["--help"], prog_name="scalesim", standalone_mode=False)
        print("scalesim: error: no command given (commands listed above)", file=sys.stderr)
        return 2
    prog = f"scalesim {_command_name(argv)}".strip()
    try:
        rv = cmd.main(args=argv, prog_name="scalesim", standalone_mode=False)
        return int(rv or 0)
    except ClickUsageError as e:  # bad flags: one line and exit 2, like every other bad input
        print(f"{prog}: error: {_one_line(e.format_message())}", file=sys.stderr)
        return 2
    except ClickException as e:
        print(f"{prog}: error: {_one_line(e.format_message())}", file=sys.stderr)
        return e.exit_code
    except ScalesimError as e:
        print(f"{prog}: error: {_one_line(e)}", file=sys.stderr)
        return e.exit_code
    except (KeyboardInterrupt, Abort):
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
