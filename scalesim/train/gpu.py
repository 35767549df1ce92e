"""One GPU per Horovod rank (Horovod's own recipe): each rank sees only the GPU of its local rank,
with memory growth on so ranks sharing a machine do not each reserve all of it. Call right after
hvd.init(), before TensorFlow runs any op. On a machine without GPUs it does nothing.

Which allreduce runs is Horovod's build: built with HOROVOD_GPU_OPERATIONS=NCCL (scripts/
build_horovod.sh does so when a GPU and CUDA toolchain are present) it reduces GPU tensors with NCCL,
else with Gloo on the host; `scalesim doctor` says which."""
from __future__ import annotations


def pin_gpu(local_rank: int) -> str | None:
    """Make GPU `local_rank` (mod the number of GPUs) the only one this process sees; its name or None."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    gpu = gpus[local_rank % len(gpus)]
    try:
        tf.config.experimental.set_memory_growth(gpu, True)
        tf.config.set_visible_devices(gpu, "GPU")
    except RuntimeError:   # TensorFlow already initialised its devices: leave them as they are
        return None
    return gpu.name
