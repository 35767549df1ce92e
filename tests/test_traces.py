"""Readers for external throughput traces and training curves: both column forms, and one-line errors
that name the file, row and column."""
import numpy as np
import pytest

import fit_synth as fs
from scalesim.fit import observations as ob
from scalesim.fit.curves import read_training_curve
from scalesim.fit.traces import parse_placement, read_throughput_trace
from scalesim.errors import DataError


def _csv(tmp_path, text, name="t.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_placement_form(tmp_path):
    t = read_throughput_trace(_csv(tmp_path, "placement,local_bsz,step_time,sync_time\n1344,32,0.5,0.1\n1,8,0.2,0.0\n"))
    assert list(t["num_nodes"]) == [4, 1] and list(t["num_replicas"]) == [12, 1]
    assert list(t["replicas_per_node"]) == [4, 1] and list(t["placement"]) == ["1344", "1"]
    assert list(t["sync_time"]) == [0.1, 0.0] and list(t["local_batch"]) == [32.0, 8.0]


def test_nodes_replicas_form_without_sync(tmp_path):
    t = read_throughput_trace(_csv(tmp_path, "num_nodes,num_replicas,local_batch,step_time\n2,5,64,0.3\n1,1,64,0.1\n"))
    assert list(t["replicas_per_node"]) == [3, 1]          # 5 ranks on 2 hosts: the busiest has 3
    assert t["sync_time"].isna().all() and t["placement"].isna().all()
    steps = ob.load(tmp_path / "t.csv").steps
    assert list(steps["config"]) == ["nodes=2 replicas=5 local_batch=64", "nodes=1 replicas=1 local_batch=64"]


def test_parse_placement():
    assert parse_placement("1344") == (1, 3, 4, 4)
    assert parse_placement(44.0) == (4, 4)
    for bad in ("10", "ab", "", "1-2"):
        with pytest.raises(ValueError):
            parse_placement(bad)


BAD_TRACES = {
    "missing column": ("placement,local_bsz\n1,32\n", r"missing column\(s\) step_time"),
    "no placement": ("local_bsz,step_time\n32,0.1\n", r"missing column\(s\) placement"),
    "text step_time": ("placement,local_bsz,step_time\n1,32,0.1\n2,32,fast\n", r"row 3: column step_time must be a positive number, got 'fast'"),
    "negative": ("placement,local_bsz,step_time\n1,-32,0.1\n", r"row 2: column local_bsz"),
    "zero digit": ("placement,local_bsz,step_time\n1,32,0.1\n10,32,0.1\n", r"row 3: placement '10'"),
    "nodes > replicas": ("num_nodes,num_replicas,local_bsz,step_time\n3,2,32,0.1\n", r"row 2: num_nodes and num_replicas"),
    "sync > step": ("placement,local_bsz,step_time,sync_time\n11,32,0.1,0.2\n", r"row 2: sync_time exceeds step_time"),
    "header only": ("placement,local_bsz,step_time\n", r"no rows"),
}


@pytest.mark.parametrize("text,msg", BAD_TRACES.values(), ids=BAD_TRACES.keys())
def test_bad_traces_are_one_line_data_errors(tmp_path, text, msg):
    with pytest.raises(DataError, match=msg) as e:
        read_throughput_trace(_csv(tmp_path, text))
    assert "\n" not in str(e.value) and "t.csv" in str(e.value)


def test_source_detection(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        ob.load(tmp_path / "none.csv")
    with pytest.raises(DataError, match="neither a throughput trace"):
        ob.load(_csv(tmp_path, "a,b\n1,2\n"))
    with pytest.raises(DataError, match="not a scalesim run directory"):
        ob.load(tmp_path)
    with pytest.raises(DataError, match="must be a Horovod Timeline file"):
        ob.load(_csv(tmp_path, "x", name="t.json"))
    with pytest.raises(DataError, match="expected a run directory, a .csv trace or a Horovod Timeline"):
        ob.load(_csv(tmp_path, "x", name="t.txt"))
    with pytest.raises(DataError, match="not a readable CSV"):
        ob.load(_csv(tmp_path, "", name="empty.csv"))


def test_training_curve_batch_from_name_or_column(tmp_path):
    c = read_training_curve(_csv(tmp_path, "iteration,metric\n0,0.1\n100,0.5\n", "validation-256.csv"))
    assert c["global_batch"].iloc[0] == 256 and c["grad_sqr"].isna().all()
    c = read_training_curve(_csv(tmp_path, "iteration,metric,batch_size\n0,0.1,64\n", "curve.csv"))
    assert c["global_batch"].iloc[0] == 64
    c = read_training_curve(_csv(tmp_path, "iteration,metric\n0,0.1\n", "run.csv"), batch_size=32)
    assert c["global_batch"].iloc[0] == 32
    with pytest.raises(DataError, match="cannot tell the batch size"):
        read_training_curve(_csv(tmp_path, "iteration,metric\n0,0.1\n", "curve.csv"))
    with pytest.raises(DataError, match=r"missing column\(s\) metric"):
        read_training_curve(_csv(tmp_path, "iteration,acc\n0,0.1\n", "validation-8.csv"))
    with pytest.raises(DataError, match="iteration must be >= 0"):
        read_training_curve(_csv(tmp_path, "iteration,metric\n-1,0.1\n", "validation-8.csv"))


def test_reads_the_pollux_traces_when_present():
    t = read_throughput_trace(fs.pollux_dir_or_skip() / "cifar10.placements.csv")
    assert len(t) == 1183 and t["num_replicas"].max() == 16 and t["num_nodes"].max() == 4
    assert np.all(t["num_replicas"] <= 4 * t["num_nodes"])
