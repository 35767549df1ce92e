"""Reproduce published scaling results with `scalesim simulate`, from the inputs the papers give.

    .venv/bin/python experiments/published/reproduce.py          # prints predicted vs published

Each case is a `scalesim simulate` command line; this script runs it (`python -m scalesim.cli ... --json`)
and compares the figures with the published ones. See README.md in this folder for the sources and
every assumption."""
from __future__ import annotations

import json
import subprocess
import sys

IMAGENET_TRAIN = "1281167"  # ILSVRC-2012 training images

GOYAL = {
    "name": "Goyal et al. 2017: ResNet-50, 256 GPUs, batch 8192, from the 8-GPU baseline",
    "argv": ["simulate", "--profile", "goyal2017-big-basin", "--params", "25.557M",
             "--baseline", f"8 devices took 29h for 90 epochs of {IMAGENET_TRAIN} images",
             "--local-batch", "32", "--nodes", "1,32", "--target-time", "1h"],
    "published": {"time_h_256": 1.0, "baseline_scaling_eff_256": 0.90},
}

# Per-GPU speeds: TensorFlow's published single-P100 numbers (tf_cnn_benchmarks, synthetic data, batch 64,
# tensorflow/docs_src/performance/benchmarks.md); ResNet-101 is not in that table and is interpolated
# between ResNet-50 (219/s) and ResNet-152 (91.8/s) per image time, halfway by depth: ASSUMPTION.
HOROVOD_MODELS = {
    "Inception V3": {"params": "23.8M", "speed": "142", "published_eff": 0.90},
    "ResNet-101": {"params": "44.7M", "speed": "129", "published_eff": 0.90},
    "VGG-16": {"params": "138.4M", "speed": "154", "published_eff": 0.68},
}


def horovod_case(model: str, gamma: str) -> dict:
    m = HOROVOD_MODELS[model]
    return {
        "name": f"Horovod (Sergeev & Del Balso 2018): {model}, 512 GPUs, gamma {gamma}",
        "argv": ["simulate", "--profile", "horovod2018-pascal-roce", "--params", m["params"],
                 "--device-speed", m["speed"], "--local-batch", "64", "--nodes", "1,32,128",
                 "--target-epochs", "90", "--dataset-size", IMAGENET_TRAIN, "--gamma", gamma],
        "published": {"scaling_eff_512": m["published_eff"]},
    }


CASES = [GOYAL] + [horovod_case(m, g) for g in ("1", "2") for m in HOROVOD_MODELS]


def run_case(case: dict, python: str = sys.executable) -> dict:
    r = subprocess.run([python, "-m", "scalesim.cli", *case["argv"], "--json"], capture_output=True, text=True,
                       check=True)
    return json.loads(r.stdout)


def predicted(case: dict, plan: dict) -> dict:
    by_devices = {c["num_replicas"]: c for c in plan["configs"]}
    if "time_h_256" in case["published"]:
        c = by_devices[256]
        return {"time_h_256": c["time"] / 3600, "baseline_scaling_eff_256": c["baseline_scaling_eff"]}
    return {"scaling_eff_512": by_devices[512]["scaling_eff"], "scaling_eff_128": by_devices[128]["scaling_eff"]}


def main() -> int:
    print("| case | quantity | predicted | published |")
    print("|---|---|---|---|")
    for case in CASES:
        got = predicted(case, run_case(case))
        for k, v in got.items():
            pub = case["published"].get(k)
            print(f"| {case['name']} | {k} | {v:.3f} | {'-' if pub is None else f'{pub:.2f}'} |")
    print("\ncommands:")
    for case in CASES:
        print("  scalesim " + " ".join(a if " " not in a else f'"{a}"' for a in case["argv"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
