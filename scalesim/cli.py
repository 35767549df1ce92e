"""`scalesim` command line. Each sub-command lives in its own module that defines
`add_arguments(parser)` and `run(args) -> int`; modules are imported lazily so that analysis
commands never import TensorFlow."""
from __future__ import annotations

import argparse
import importlib
import sys

from .errors import ScalesimError

# name -> (module, one-line help). Keep modules free of TensorFlow imports at module level.
COMMANDS = {
    "doctor": ("scalesim.doctor", "check TensorFlow, Keras, Horovod, cores and datasets"),
    "train": ("scalesim.train.launch", "train a ResNet on N Horovod ranks with the Goyal recipe"),
    "measure": ("scalesim.measure.campaign", "run a measurement campaign over node counts and batch sizes"),
    "fit": ("scalesim.analysis.fit_cli", "fit compute, communication and statistical-efficiency models"),
    "validate": ("scalesim.analysis.validate", "check a model's predictions against held-out measurements"),
    "predict": ("scalesim.analysis.predict", "recommend node count and global batch for a target time"),
    "simulate": ("scalesim.analysis.simulate", "what-if predictions for clusters you do not own"),
    "report": ("scalesim.report.html", "write a self-contained HTML report"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's default prints the usage block too)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scalesim", description="Predict how data-parallel Horovod training scales: "
                     "measure -> fit -> validate / predict / simulate -> report.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"scalesim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (modname, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        mod = importlib.import_module(modname)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except ScalesimError as e:
        print(f"scalesim {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"scalesim {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
