#!/usr/bin/env bash
# GPU check for scalesim on a bare Debian/Ubuntu GPU machine (NVIDIA driver installed, pip registries
# reachable). Run from the repository root:   bash scripts/gpu-check.sh
# Installs (GPU TensorFlow; Horovod with NCCL when the CUDA toolkit's nvcc is here, else Gloo), prints
# `scalesim doctor`, then ~2 minutes of measurement, printing the figures:
#   1. keras.applications MobileNet in its own model.fit loop, one rank per GPU, recorded by
#      scalesim.keras.Recorder (run directory under data/runs/gpu-check-*), and paired recorded/plain
#   2. scalesim measure --arch keras:MobileNet on the same GPUs, for comparison
# Everything it writes is under data/runs/ and the venv; nothing else on the machine is changed
# besides the apt packages setup.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nvidia-smi >/dev/null || { echo "gpu-check: no nvidia-smi: not a GPU machine (or no driver)" >&2; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
ngpu=$(nvidia-smi -L | grep -c '^GPU ' || true)
[ "$ngpu" -ge 1 ] || { echo "gpu-check: nvidia-smi lists no GPU" >&2; exit 1; }
np=$(( ngpu < 8 ? ngpu : 8 ))

if command -v nvcc >/dev/null; then
  export SCALESIM_GPU=1                               # Horovod with NCCL
else
  echo "gpu-check: no nvcc (CUDA toolkit): Horovod is built with Gloo only (GPU tensors reduced via host)"
  export SCALESIM_GPU=0 SCALESIM_TF="tensorflow[and-cuda]==2.21.0"
fi
t0=$(date +%s)
bash scripts/setup.sh
echo "gpu-check: set-up took $(( $(date +%s) - t0 )) s"
py=.venv/bin/python
.venv/bin/scalesim doctor || true

stamp=$(date +%Y%m%d-%H%M%S)
run=data/runs/gpu-check-keras-$stamp
mkdir -p data/runs
hvd=(.venv/bin/horovodrun -np "$np" -H "localhost:$np" --gloo)
echo "== 1. model.fit, MobileNet alpha 1.0 on 64x64x3 synthetic images, $np rank(s), one GPU each"
timeout 600 "${hvd[@]}" "$py" examples/keras_fit_mobilenet.py --run-dir "$run" --alpha 1.0 --image-size 64 \
  --local-batch 128 --epochs 2 --steps 60 2>&1 | grep -v -e cpu_feature -e oneDNN -e absl | tail -8
echo "== recording overhead (paired, one run)"
timeout 600 "${hvd[@]}" "$py" examples/keras_fit_mobilenet.py --run-dir "$run-bench" --alpha 1.0 --image-size 64 \
  --local-batch 128 --steps 60 --bench --rounds 8 --block 10 2>&1 | grep -v -e cpu_feature -e oneDNN -e absl | tail -4
echo "== 2. scalesim measure --arch keras:MobileNet"
timeout 600 .venv/bin/scalesim measure --arch keras:MobileNet,alpha=1.0 --dataset synthetic --input-shape 64,64,3 \
  --classes 10 --devices-per-node "$np" --local-batches 128 --steps 20 --warmup 3 --threads-per-rank auto \
  --no-allreduce-bench --out "data/runs/gpu-check-measure-$stamp" 2>&1 | tail -12 || true
echo "== figures"
"$py" - "$run" "data/runs/gpu-check-measure-$stamp" <<'PY'
import sys
from scalesim.schema import RunDir, slowest_step_median
for path in sys.argv[1:]:
    try:
        rd = RunDir(path); steps = rd.read_table("steps")
    except Exception as e:
        print(f"{path}: {e}"); continue
    prod = steps[steps["mode"] == "production"]
    med = slowest_step_median(prod, ["config_id"])
    for cid, t in med.items():
        g = prod[prod["config_id"] == cid]
        print(f"{path} {cid}: step {t * 1e3:.1f} ms, {g['global_batch'].iloc[0] / t:,.0f} images/s, "
              f"allreduce {g['allreduce_time'].median() * 1e3:.2f} ms (median), ranks {g['num_replicas'].iloc[0]}")
    noise = rd.read_table("noise")
    if len(noise):
        print(f"  B_simple (last EMA) {noise['b_simple'].dropna().iloc[-1] if noise['b_simple'].notna().any() else 'n/a'}")
PY
echo "gpu-check: done in $(( $(date +%s) - t0 )) s"
