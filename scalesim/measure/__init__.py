"""Measurement campaign (`scalesim measure`): per-step time split, production step time,
allreduce microbenchmark and gradient noise on real Horovod ranks, written to a run directory
(scalesim/schema.py). Only worker.py and allreduce_bench.run import TensorFlow/Horovod."""
