"""Sweep parameters, slots and the table (no Spark, no TensorFlow)."""
import math

import pytest

from scalesim.errors import UsageError
from scalesim.sweep import table
from scalesim.sweep.engines import plan_slots
from scalesim.sweep.space import Choice, Range, arm, grid, parse_list, parse_space, seed_list


def test_parse_space_ranges_and_choices():
    dims = parse_space("global_batch=log:128..8192,ref_lr=log:0.01..1,warmup_epochs=0..10,lr_rule=linear|none")
    assert dims == (Range("global_batch", 128, 8192, True, True), Range("ref_lr", 0.01, 1.0, True, False),
                    Range("warmup_epochs", 0, 10, False, True), Choice("lr_rule", ("linear", "none")))
    assert parse_space("warmup_epochs=0.5..2")[0] == Range("warmup_epochs", 0.5, 2.0, False, False)


@pytest.mark.parametrize("bad", ["", "global_batch=log:0..10", "ref_lr=1..0.1", "foo=1..2",
                                 "ref_lr=log:0.1", "lr_rule=cubic", "ref_lr=a..b", "ref_lr=0..1,ref_lr=0..2"])
def test_parse_space_rejects(bad):
    with pytest.raises(UsageError):
        parse_space(bad)


def test_grid_order_and_arms():
    g = grid({"global_batch": parse_list("global_batch", "256,1024"), "lr_rule": parse_list("lr_rule", "linear,none"),
              "warmup_epochs": parse_list("warmup_epochs", "0,5")}, seed_list(3))
    assert len(g) == 2 * 2 * 2 * 3
    assert [p["seed"] for p in g[:4]] == [0, 1, 2, 0]          # seeds innermost
    assert g[0] == {"global_batch": 256, "lr_rule": "linear", "warmup_epochs": 0.0, "seed": 0}
    assert arm(g[0]) == "lr_rule=linear,warmup_epochs=0"
    assert seed_list("4,9") == (4, 9)
    for bad in ("0", "x"):
        with pytest.raises(UsageError):
            seed_list(bad)
    with pytest.raises(UsageError):
        parse_list("global_batch", "256,0")


def test_plan_slots_fit_cores():
    assert plan_slots(2, None) == (2, 1)
    assert plan_slots(2, 1) == (1, 2)
    assert plan_slots(8, 3) == (3, 2)
    assert plan_slots(2, 2, nodes=2) == (1, 1)       # a 2-rank trial fills both cores
    assert plan_slots(16, None, threads=4) == (4, 4)
    for cores, par, nodes in [(2, 4, 1), (4, None, 2), (16, 8, 2), (3, 2, 1)]:
        k, t = plan_slots(cores, par, nodes)
        assert k * t * nodes <= max(cores, nodes)


def test_table_roundtrip_atomic(tmp_path):
    rows = [table.new_row(1, {"global_batch": 64, "seed": 0}), table.new_row(0, {"global_batch": 32, "seed": 0})]
    rows[1].update(status="done", objective=0.25, run_dir="runs/t0000", attempts=1, worker_pid=123)
    table.write(tmp_path, rows)
    back = table.read(tmp_path)
    assert [r["trial_id"] for r in back] == [0, 1]
    assert back[0]["objective"] == 0.25 and back[0]["worker_pid"] == 123 and back[0]["run_dir"] == "runs/t0000"
    assert math.isnan(back[1]["objective"]) and back[1]["run_dir"] is None
    assert [r["trial_id"] for r in table.unfinished(back)] == [1]
    assert (tmp_path / "trials.csv").read_text().count("\n") == 3
    assert not list(tmp_path.glob(".*tmp"))
