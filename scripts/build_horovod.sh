#!/usr/bin/env bash
# Build a Horovod wheel against the TensorFlow in the given interpreter: Gloo + TensorFlow (CPU), and
# with SCALESIM_GPU=1 also CUDA + NCCL allreduce for GPU tensors (HOROVOD_GPU_OPERATIONS=NCCL).
# Two fixes are needed for Horovod 0.28.1 with TensorFlow 2.21 (see ../shared/notes/horovod-tensorflow.md):
#  - PyPI's cmake 4.x rejects Gloo's old cmake_minimum_required -> CMAKE_POLICY_VERSION_MINIMUM=3.5
#  - xla_mpi_ops.cc (GPU-only XLA custom calls) does not compile against TF 2.21 headers -> drop it
#    (Horovod's XLA ops are off by default; the NCCL allreduce ops do not need it)
# GPU builds find CUDA from nvcc (or CUDA_HOME) and NCCL from CUDA_HOME, HOROVOD_NCCL_HOME, or the
# nvidia-nccl-cu12 wheel that tensorflow[and-cuda] installs into the interpreter's site-packages.
# Usage: build_horovod.sh PYTHON VERSION OUT_DIR
set -euo pipefail
py="$1"; ver="$2"; out="$3"
mkdir -p "$out"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
echo "[setup] building horovod $ver from source (about 2-4 minutes; GPU=${SCALESIM_GPU:-0})"
"$py" -m pip download -q --no-deps --no-binary :all: -d "$work" "horovod==$ver"
tar -xzf "$work"/horovod-"$ver".tar.gz -C "$work"
src="$work/horovod-$ver"
# Idempotent patch: delete the line that appends xla_mpi_ops.cc to TF_SOURCES.
sed -i '/xla_mpi_ops\.cc/d' "$src/horovod/tensorflow/CMakeLists.txt"
"$py" -m pip install -q cmake wheel setuptools
export CMAKE_POLICY_VERSION_MINIMUM=3.5 MAKEFLAGS="-j$(nproc)" \
  HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
  HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 HOROVOD_CPU_OPERATIONS=gloo
if [ "${SCALESIM_GPU:-0}" = 1 ]; then
  nvcc_path="$(command -v nvcc || true)"
  export HOROVOD_GPU=CUDA HOROVOD_GPU_OPERATIONS=NCCL
  export HOROVOD_CUDA_HOME="${CUDA_HOME:-${nvcc_path:+$(dirname "$(dirname "$nvcc_path")")}}"
  if [ -z "$HOROVOD_CUDA_HOME" ] || [ ! -x "$HOROVOD_CUDA_HOME/bin/nvcc" ]; then
    echo "[setup] SCALESIM_GPU=1 but no CUDA toolkit (nvcc) found: install it or set CUDA_HOME" >&2
    exit 1
  fi
  if [ -z "${HOROVOD_NCCL_HOME:-}" ] && [ ! -f "$HOROVOD_CUDA_HOME/include/nccl.h" ] && [ ! -f /usr/include/nccl.h ]; then
    # The NCCL that TensorFlow itself loads (pip wheel nvidia-nccl-cu12): headers + libnccl.so.2.
    nccl="$("$py" -c 'import nvidia.nccl; print(list(nvidia.nccl.__path__)[0])' 2>/dev/null || true)"
    if [ -n "$nccl" ] && [ -f "$nccl/include/nccl.h" ]; then
      [ -e "$nccl/lib/libnccl.so" ] || ln -s libnccl.so.2 "$nccl/lib/libnccl.so"
      export HOROVOD_NCCL_INCLUDE="$nccl/include" HOROVOD_NCCL_LIB="$nccl/lib" HOROVOD_NCCL_LINK=SHARED
    else
      echo "[setup] no NCCL found (apt-get install libnccl-dev, or pip install nvidia-nccl-cu12)" >&2
      exit 1
    fi
  fi
  echo "[setup] GPU build: CUDA at $HOROVOD_CUDA_HOME, NCCL ${HOROVOD_NCCL_HOME:-${HOROVOD_NCCL_INCLUDE:-system}}"
fi
"$py" -m pip wheel -q --no-deps --no-build-isolation -w "$work/dist" "$src"
cp "$work"/dist/horovod-*.whl "$out"/
