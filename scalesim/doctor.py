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
try:  # GPUs TensorFlow sees, and the CUDA it was built with (None on CPU builds)
    import tensorflow as tf
    info = tf.sysconfig.get_build_info()
    out["tf_gpus"] = [True, {"gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
                             "cuda": info.get("cuda_version"), "cudnn": info.get("cudnn_version")}]
except Exception as e:
    out["tf_gpus"] = [False, f"{type(e).__name__}: {str(e)[:120]}"]
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
    out.append(_tf_gpus(found.get("tf_gpus")))
    return out


def _tf_gpus(found) -> Check:
    """The GPUs TensorFlow itself sees (a CPU-only install sees none even on a GPU machine)."""
    if not found or not found[0]:
        return Check("tensorflow gpus", True, f"not probed ({found[1] if found else 'no answer'})")
    d = found[1]
    cuda = f"built with CUDA {d['cuda']}, cuDNN {d['cudnn']}" if d.get("cuda") else "CPU-only build"
    gpus = ", ".join(d["gpus"]) or "none"
    need = bool(_nvidia_smi()) and not d["gpus"]
    return Check("tensorflow gpus", not need, f"{gpus} ({cuda})",
                 "this machine has GPUs but TensorFlow sees none: SCALESIM_GPU=1 bash scripts/setup.sh "
                 "(installs tensorflow[and-cuda])")


def _nvidia_smi() -> list[dict]:
    """[{name, driver, memory}] from nvidia-smi, [] when there is none (or no GPU)."""
    import shutil

    if not shutil.which("nvidia-smi"):
        return []
    try:
        r = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                            "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    rows = [[c.strip() for c in line.split(",")] for line in r.stdout.splitlines() if line.strip()]
    return [{"name": c[0], "driver": c[1], "memory": c[2]} for c in rows if len(c) >= 3] if r.returncode == 0 else []


def _gpus() -> Check:
    gpus = _nvidia_smi()
    if not gpus:
        return Check("gpus", True, "none (no nvidia-smi or no GPU): CPU training, Gloo allreduce")
    names = ", ".join(sorted({g["name"] for g in gpus}))
    return Check("gpus", True, f"{len(gpus)} x {names} ({gpus[0]['memory']}), driver {gpus[0]['driver']}")


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
    ops = built.get("tensor operations", {})
    gpu = bool(_nvidia_smi())
    nccl = ops.get("NCCL", False)
    return [
        Check("horovod frameworks", frameworks.get("TensorFlow", False), on(frameworks),
              f"Horovod was built without TensorFlow; {SETUP_FIX}"),
        Check("horovod controllers", controllers.get("Gloo", False), on(controllers),
              f"Horovod was built without Gloo; {SETUP_FIX}"),
        # On a GPU machine a build without NCCL reduces GPU tensors through host memory with Gloo.
        Check("horovod tensor ops", nccl or not gpu, on(ops) + ("" if nccl else "; allreduce via Gloo"),
              "GPUs present but Horovod has no NCCL: rebuild with SCALESIM_GPU=1 bash scripts/setup.sh "
              "(needs the CUDA toolkit's nvcc and NCCL)"),
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
            _cores(), _gpus(), _dataset()]


def run(as_json: bool = False) -> int:
    results = checks()
    if as_json:
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
