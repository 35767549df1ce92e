"""The typer CLI: every command's --help starts without TensorFlow (or pandas), and bad flags give one
line on stderr with exit code 2 for every command."""
import subprocess
import sys

import pytest

from scalesim.cli import COMMANDS

PROBE = """
import sys
from scalesim.cli import main
rc = main({argv!r})
heavy = sorted(m for m in ("tensorflow", "horovod", "pandas", "scipy") if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
sys.exit(rc)
"""


def _probe(argv):
    return subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("argv", [["--help"]] + [[c, "--help"] for c in COMMANDS], ids=lambda a: " ".join(a))
def test_help_imports_no_tensorflow(argv):
    r = _probe(argv)
    assert r.returncode == 0, r.stderr
    assert "Usage: scalesim" in r.stdout
    assert r.stderr.strip().splitlines()[-1] == "HEAVY=", r.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_option_is_one_line_exit_2(command):
    r = subprocess.run([sys.executable, "-m", "scalesim.cli", command, "--no-such-flag"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"scalesim {command}: error:") and "--no-such-flag" in lines[0]
    assert "Traceback" not in r.stderr


def test_no_command_prints_the_overview_and_exits_2():
    r = subprocess.run([sys.executable, "-m", "scalesim.cli"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "predict" in r.stdout


def test_public_api_is_lazy_and_named_like_the_commands():
    code = ("import sys, scalesim; assert 'pandas' not in sys.modules; "
            "assert callable(scalesim.fit) and callable(scalesim.predict) and callable(scalesim.validate); "
            "assert scalesim.RunDir.__name__ == 'RunDir'; assert 'tensorflow' not in sys.modules")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
