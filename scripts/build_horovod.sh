#!/usr/bin/env bash
# Build a Horovod wheel (Gloo + TensorFlow, CPU) against the TensorFlow in the given interpreter.
# Two fixes are needed for Horovod 0.28.1 with TensorFlow 2.21 (see ../shared/notes/horovod-tensorflow.md):
#  - PyPI's cmake 4.x rejects Gloo's old cmake_minimum_required -> CMAKE_POLICY_VERSION_MINIMUM=3.5
#  - xla_mpi_ops.cc (GPU-only XLA custom calls) does not compile against TF 2.21 headers -> drop it
# Usage: build_horovod.sh PYTHON VERSION OUT_DIR
set -euo pipefail
py="$1"; ver="$2"; out="$3"
mkdir -p "$out"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
echo "[setup] building horovod $ver from source (about 2-4 minutes)"
"$py" -m pip download -q --no-deps --no-binary :all: -d "$work" "horovod==$ver"
tar -xzf "$work"/horovod-"$ver".tar.gz -C "$work"
src="$work/horovod-$ver"
# Idempotent patch: delete the line that appends xla_mpi_ops.cc to TF_SOURCES.
sed -i '/xla_mpi_ops\.cc/d' "$src/horovod/tensorflow/CMakeLists.txt"
"$py" -m pip install -q cmake wheel setuptools
export CMAKE_POLICY_VERSION_MINIMUM=3.5 MAKEFLAGS="-j$(nproc)" \
  HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
  HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 HOROVOD_CPU_OPERATIONS=gloo
"$py" -m pip wheel -q --no-deps --no-build-isolation -w "$work/dist" "$src"
cp "$work"/dist/horovod-*.whl "$out"/
