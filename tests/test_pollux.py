"""The key external check: on Pollux's traces (6 workloads, 4 nodes x 4 T4 GPUs, measured by AdaptDL),
fit on placements with <= 4 replicas and predict those with > 4. Skips where the traces are absent.

Measured out-of-sample step-time MAPE (experiments/pollux/evaluate.py): bert 3.2, cifar10 7.4,
deepspeech2 7.5, imagenet 6.7, ncf 7.3, yolov3 6.8 %; the Pollux model form re-fitted the same way:
44.7, 39.4, 23.0, 14.8, 61.9, 31.9 %. Limits below leave ~2 points of margin for optimizer noise.
"""
import pytest

import fit_synth as fs

LIMITS = {"bert": 5.5, "cifar10": 9.5, "deepspeech2": 9.8, "imagenet": 9.0, "ncf": 9.5, "yolov3": 9.0}


@pytest.mark.parametrize("workload", sorted(LIMITS))
def test_out_of_sample_step_time_mape(workload):
    d = fs.pollux_dir_or_skip()
    r = fs.pollux_evaluate().evaluate(d / f"{workload}.placements.csv", "num_replicas>4")
    ours, pollux = r["scalesim"], r["pollux"]
    assert ours["out"] <= LIMITS[workload], ours
    assert ours["out"] <= 10.0 and ours["in"] <= 8.0
    assert pollux["out"] > ours["out"] + 5      # the bytes/bandwidth + host-count model is the difference
    assert r["rows"]["test"] > 4 * r["rows"]["train"]
