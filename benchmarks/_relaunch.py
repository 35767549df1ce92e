"""Run a benchmark script again as the worker of N local Horovod ranks (Gloo) and print rank 0's lines."""
from __future__ import annotations

import os
import subprocess
import sys


def under_horovodrun(script: str, ranks: int, worker_argv: list) -> int:
    from scalesim.train import hvdrun

    script = os.path.abspath(script)
    cmd = [hvdrun.horovodrun_path(), "-np", str(ranks), "-H", f"localhost:{ranks}", "--gloo",
           sys.executable, script, "--worker", *worker_argv]
    env = hvdrun.rank_env()
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(script)) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        rank, text = hvdrun.split_prefix(line)
        if rank == 0:
            print(text)
    if out.returncode:
        print(out.stdout[-3000:], out.stderr[-3000:], file=sys.stderr)
    return out.returncode
