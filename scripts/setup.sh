#!/usr/bin/env bash
# One-command set-up for scalesim on Debian 12 (Python 3.11, no GPU needed).
# Idempotent: on a ready machine it checks each piece and returns in seconds.
#   bash scripts/setup.sh            # CPU TensorFlow (default)
#   SCALESIM_GPU=1 bash scripts/setup.sh   # GPU: tensorflow[and-cuda], Horovod with NCCL (also
#                                           # chosen automatically when nvidia-smi and nvcc are present)
#   SCALESIM_TF=<pip requirement> overrides the TensorFlow package.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="${SCALESIM_VENV:-$here/.venv}"
# GPU set-up when asked (SCALESIM_GPU=1) or when a GPU and the CUDA toolchain are both here.
if [ -z "${SCALESIM_GPU:-}" ]; then
  SCALESIM_GPU=0
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 && command -v nvcc >/dev/null; then
    SCALESIM_GPU=1
  fi
fi
export SCALESIM_GPU
if [ "$SCALESIM_GPU" = 1 ]; then
  tf_pkg="${SCALESIM_TF:-tensorflow[and-cuda]==2.21.0}"
else
  tf_pkg="${SCALESIM_TF:-tensorflow-cpu==2.21.0}"
fi
hvd_version="0.28.1"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/scalesim"

export TF_CPP_MIN_LOG_LEVEL=3 PIP_NO_WARN_SCRIPT_LOCATION=1
log() { printf '[setup] %s\n' "$*"; }

# 1. System packages: the real dataset, a browser for report tests, build tools for Horovod.
need_apt=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need_apt+=(dataset-fashion-mnist)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v g++ >/dev/null || need_apt+=(g++)
command -v cmake >/dev/null || need_apt+=(cmake)
command -v make >/dev/null || need_apt+=(make)
# Emulated multi-node clusters (scalesim cluster, measure --nodes N) run one sshd per node.
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
{ command -v ip && command -v tc; } >/dev/null || need_apt+=(iproute2)   # namespaces, veth, tbf shaping
python3 -c 'import ensurepip' 2>/dev/null || need_apt+=(python3-venv)
# `scalesim sweep` runs trials on Spark (pyspark 4 needs Java 17).
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
# Horovod compiles a C++ extension: it needs the interpreter's headers (Python.h).
python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || need_apt+=(python3-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# 2. Virtual environment.
[ -x "$venv/bin/python" ] || { log "creating $venv"; python3 -m venv "$venv"; }
py="$venv/bin/python"
pip() { "$py" -m pip --disable-pip-version-check -q "$@"; }

# 3. TensorFlow first: Horovod compiles against the TensorFlow already installed.
if ! "$py" -c 'import tensorflow' 2>/dev/null; then
  log "installing $tf_pkg"
  pip install "$tf_pkg"
fi

# 4. Horovod from its sdist, patched and built with Gloo only; the wheel is cached per TF version
#    so a fresh clone (CI) installs it in seconds instead of rebuilding.
if ! "$py" -c 'import horovod.tensorflow' 2>/dev/null; then
  tfv=$("$py" -c 'import tensorflow as tf; print(tf.__version__)')
  wheels="$cache/wheels/tf-$tfv"   # the wheel is ABI-bound to this TensorFlow version
  [ "$SCALESIM_GPU" = 1 ] && wheels="$wheels-nccl"   # and to its build flavour (NCCL or Gloo only)
  whl=$(ls "$wheels"/horovod-"$hvd_version"-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$whl" ]; then
    bash "$here/scripts/build_horovod.sh" "$py" "$hvd_version" "$wheels"
    whl=$(ls "$wheels"/horovod-"$hvd_version"-*.whl | head -1)
  fi
  log "installing $(basename "$whl")"
  pip install --no-deps "$whl"
  pip install cloudpickle psutil pyyaml packaging  # horovod's runtime deps, --no-deps skipped them
fi

# 5. scalesim itself (editable), with analysis/report/test dependencies from pyproject.toml.
if ! "$py" -c 'import scalesim, altair, vl_convert, pyarrow, pytest, pyspark, optuna' 2>/dev/null \
   || [ "$here/pyproject.toml" -nt "$venv/.scalesim-installed" ]; then
  log "installing scalesim (editable) and its dependencies"
  pip install -e "$here[test,sweep]"
  touch "$venv/.scalesim-installed"
fi
log "ready: $venv  (activate with: source $venv/bin/activate)"
