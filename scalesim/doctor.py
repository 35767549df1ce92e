"""`scalesim doctor`: is this machine ready to train and measure? One line per check with a fix
for each failure; exit 0 when every required piece is there, 1 otherwise."""
from __future__ import annotations

import json
import platform
import re
import subprocess
from typing import NamedTuple

SETUP_FIX = "run `bash scripts/setup.sh` from the repository"


class Check(NamedTuple):
    name: str
    ok: bool
    detail: str
    fix: str = ""


def add_arguments(p) -> None:
    p.add_argument("--json", action="store_true", help="print the checks as JSON")


# Imports run in a child interpreter: TensorFlow prints start-up chatter that no environment
# variable silences, and a broken native library can crash the importing process.
_PROBE = """
import json, sys
out = {}
for name in ("tensorflow", "keras", "horovod.tensorflow"):
    try:
        mod = __import__(name)
        out[name] = [True, getattr(mod, "__version__", "?")]
    except Exception as e:
        out[name] = [False, f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"]
print("@@" + json.dumps(out))
"""


def _imports() -> list[Check]:
    import sys

    tf_fix = f"{SETUP_FIX} (installs tensorflow-cpu 2.21)"
    hvd_fix = f"{SETUP_FIX} (it builds Horovod 0.28.1 with Gloo against the installed TensorFlow)"
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=600)
        line = next(l for l in r.stdout.splitlines() if l.startswith("@@"))
        found = json.loads(line[2:])
    except (StopIteration, subprocess.TimeoutExpired, json.JSONDecodeError) as e:
        why = "timed out" if isinstance(e, subprocess.TimeoutExpired) else "the import probe crashed"
        return [Check("tensorflow", False, why, tf_fix)]
    out = []
    for key, name, fix in (("tensorflow", "tensorflow", tf_fix), ("keras", "keras", tf_fix),
                           ("horovod.tensorflow", "horovod", hvd_fix)):
        ok, detail = found[key]
        out.append(Check(name, ok, detail if ok else f"cannot import ({detail})", fix))
    return out


def parse_check_build(text: str) -> dict:
    """`horovodrun --check-build` output -> {section: {item: built?}}."""
    out, section = {}, None
    for line in text.splitlines():
        head = re.match(r"^Available (.+):\s*$", line.strip())
        if head:
            section = head.group(1).lower()
            out[section] = {}
            continue
        item = re.match(r"^\[(X| )\]\s+(.+?)\s*$", line.strip())
        if item and section:
            out[section][item.group(2)] = item.group(1) == "X"
    return out


def _start_check_build():
    """Start `horovodrun --check-build` (slow: it imports every framework) to run alongside the probe."""
    from .train.hvdrun import horovodrun_path, rank_env

    try:
        return subprocess.Popen([horovodrun_path(), "--check-build"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, env=rank_env())
    except Exception as e:
        return e


def _check_build(proc) -> list[Check]:
    if isinstance(proc, Exception):
        return [Check("horovodrun", False, str(proc), SETUP_FIX)]
    try:
        stdout, _ = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        proc.kill()
        return [Check("horovodrun", False, "--check-build timed out", SETUP_FIX)]
    built = parse_check_build(stdout)
    frameworks, controllers = built.get("frameworks", {}), built.get("controllers", {})
    on = lambda d: ", ".join(k for k, v in d.items() if v) or "none"  # noqa: E731
    return [
        Check("horovod frameworks", frameworks.get("TensorFlow", False), on(frameworks),
              f"Horovod was built without TensorFlow; {SETUP_FIX}"),
        Check("horovod controllers", controllers.get("Gloo", False), on(controllers),
              f"Horovod was built without Gloo; {SETUP_FIX}"),
    ]


def _cores() -> Check:
    from .train.hvdrun import usable_cores

    n = usable_cores()
    return Check("cores", n >= 1, f"{n} usable ({platform.machine()}, {platform.node()})")


def _dataset() -> Check:
    from .errors import ScalesimError
    from .train.data import check_available, fashion_mnist_dir

    try:
        check_available("fashion-mnist")
        return Check("fashion-mnist", True, str(fashion_mnist_dir()))
    except ScalesimError as e:
        return Check("fashion-mnist", False, "missing", str(e).split("; ", 1)[-1])


def checks() -> list[Check]:
    build = _start_check_build()
    return [Check("python", True, platform.python_version()), *_imports(), *_check_build(build),
            _cores(), _dataset()]


def run(args) -> int:
    results = checks()
    if getattr(args, "json", False):
        print(json.dumps([r._asdict() for r in results], indent=2))
    else:
        width = max(len(r.name) for r in results)
        for r in results:
            print(f"{'ok ' if r.ok else 'BAD'} {r.name:<{width}}  {r.detail}")
            if not r.ok:
                print(f"    fix: {r.fix}")
        bad = sum(not r.ok for r in results)
        print("all good" if not bad else f"{bad} problem(s) found")
    return 0 if all(r.ok for r in results) else 1
