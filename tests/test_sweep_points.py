"""`scalesim sweep --points FILE`: an explicit, ordered list of trials (a study's points), checked
at the boundary (one line, exit 2, nothing written), run in order with per-trial epochs, and the
sweep report's Goyal-form table (mean ± std by batch and arm) and B_simple column."""
import json

import pytest

from scalesim.cli import main
from scalesim.errors import UsageError
from scalesim.sweep import table
from scalesim.sweep.space import arm, parse_points

TINY = ["--arch", "resnet8", "--width", "4", "--train-subset", "256", "--test-subset", "128", "--epochs", "1",
        "--engine", "local", "--parallel", "1"]


def test_parse_points_types_defaults_and_order():
    pts = parse_points([{"global_batch": 64, "lr_rule": "none"},
                        {"global_batch": "128", "warmup_epochs": 1, "seed": 2, "epochs": 3, "decay_epochs": [1, 2]}])
    assert pts == [{"global_batch": 64, "lr_rule": "none", "seed": 0},
                   {"global_batch": 128, "warmup_epochs": 1.0, "seed": 2, "epochs": 3, "decay_epochs": [1.0, 2.0]}]
    # a trial with its own budget is an arm of its own, so it never averages into the others
    assert arm(pts[1]) == "decay_epochs=1|2,epochs=3,warmup_epochs=1"


@pytest.mark.parametrize("items, message", [
    ([], "non-empty JSON list"),
    ({"global_batch": 64}, "non-empty JSON list"),
    ([3], "trial 0 is not an object"),
    ([{"global_batch": 64, "batch_norm": 1}], "unknown parameter 'batch_norm'"),
    ([{"global_batch": 0}], "global_batch must be positive"),
    ([{"global_batch": 64, "seed": -1}], "seed must be a non-negative integer"),
    ([{"global_batch": 64, "seed": 1.5}], "seed must be a non-negative integer"),
    ([{"global_batch": 64, "epochs": 0}], "epochs must be a positive integer"),
    ([{"global_batch": 64, "decay_epochs": "2,4"}], "decay_epochs must be a list"),
    ([{"global_batch": 64, "decay_epochs": [0]}], "decay_epochs must be a list"),
    ([{"global_batch": True}], "global_batch must be a int"),
    ([{"lr_rule": "cubic"}], "unknown lr rule"),
])
def test_parse_points_rejects(items, message):
    with pytest.raises(UsageError, match=message):
        parse_points(items)


@pytest.mark.parametrize("content, extra, message", [
    ("[{\"global_batch\": 64}", [], "not valid JSON"),
    ("[{\"global_batch\": 64, \"x\": 1}]", [], "unknown parameter"),
    ("[{\"global_batch\": 64}]", ["--global-batch", "128"], "drop --global-batch"),
    ("[{\"global_batch\": 64}]", ["--seeds", "3"], "drop --seeds"),
    ("[{\"global_batch\": 64}]", ["--search", "bayes", "--space", "ref_lr=0.1..1"], "--points lists a grid"),
    ("[{\"global_batch\": 64}]", ["--decay-epochs", "2,x"], "--decay-epochs"),
    ("[{\"global_batch\": 64}, {\"global_batch\": 512}]", [], "global batch 512 is larger than the 256 training"),
])
def test_cli_bad_points_one_line_exit_2(content, extra, message, tmp_path, capsys):
    f = tmp_path / "points.json"
    f.write_text(content)
    out = tmp_path / "s"
    rc = main(["sweep", *TINY, "--points", str(f), *extra, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_grid_batch_larger_than_the_data_is_refused_before_training(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["sweep", *TINY, "--global-batch", "64,1024,128", "--out", str(out)]) == 2
    assert "global batch 1024 is larger than the 256 training examples" in capsys.readouterr().err
    assert not out.exists()


def test_cli_missing_points_file_exit_2(tmp_path, capsys):
    assert main(["sweep", *TINY, "--points", str(tmp_path / "none.json"), "--out", str(tmp_path / "s")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.slow
def test_points_run_in_order_with_their_own_epochs_then_report(tmp_path, capsys):
    f = tmp_path / "points.json"
    f.write_text(json.dumps([{"global_batch": 32, "lr_rule": "linear", "warmup_epochs": 0, "seed": 0},
                             {"global_batch": 32, "lr_rule": "linear", "warmup_epochs": 0, "seed": 1},
                             {"global_batch": 32, "lr_rule": "linear", "warmup_epochs": 0, "seed": 0, "epochs": 2},
                             {"global_batch": 128, "lr_rule": "linear", "warmup_epochs": 0.5, "seed": 0}]))
    out = tmp_path / "s"
    assert main(["sweep", *TINY, "--ghost-batch", "16", "--decay-epochs", "0.5", "--ref-batch", "32",
                 "--points", str(f), "--out", str(out)]) == 0
    rows = table.read(out)
    assert [(r["global_batch"], r["seed"], r["status"]) for r in rows] == [
        (32, 0, "done"), (32, 1, "done"), (32, 0, "done"), (128, 0, "done")]
    assert [r["epochs_done"] for r in rows] == [1, 1, 2, 1]
    assert main(["sweep", "--resume", str(out)]) == 0                    # nothing left: runs nothing
    sessions = json.loads((out / "sweep.json").read_text())["sessions"]
    assert [s["trials_run"] for s in sessions] == [4, 0]
    assert [r["attempts"] for r in table.read(out)] == [1, 1, 1, 1]
    m = json.loads((out / rows[3]["run_dir"] / "manifest.json").read_text())
    assert m["config"]["ghost_batch"] == 16 and m["config"]["decay_epochs"] == [0.5]
    assert m["config"]["warmup_epochs"] == 0.5 and m["recording"]["b_simple"] > 0
    html = tmp_path / "r.html"
    assert main(["report", str(out), "-o", str(html)]) == 0
    text = html.read_text()
    assert "test_error by global batch and arm (mean ± std over seeds)" in text
    assert "(n=2)" in text and "(n=1)" in text and "B_simple at B=32" in text
    assert "a batch holds while its mean over seeds stays within 1 point" in text


def test_sweep_answer_says_where_each_arm_breaks():
    import pandas as pd

    from scalesim.report.arms import arm_table, sweep_answer
    from scalesim.report.sweep import Sweep
    from scalesim.sweep.driver import SweepSpec

    rows = [("ref", 64, 0.100), ("ref", 64, 0.102), ("long", 64, 0.090), ("ref", 256, 0.105), ("ref", 1024, 0.125),
            ("ref", 4096, 0.300), ("none", 256, 0.150)]
    df = pd.DataFrame([{"status": "done", "arm": a, "global_batch": b, "objective": o} for a, b, o in rows])
    text = sweep_answer(Sweep(__import__("pathlib").Path("s"), SweepSpec(base={}), df))
    assert "B = 64 (0.1010)" in text                       # mean of the arm that ran at larger batches too
    assert "ref: held to B = 256, broke at 1024 (0.1250)" in text
    assert "none: no larger batch held, broke at 256 (0.1500)" in text
    header, table_rows = arm_table(df)
    assert header == ["global batch", "long", "none", "ref"]
    assert table_rows[0] == [64, "0.0900 (n=1)", "", "0.1010 ± 0.0014 (n=2)"]


def test_known_train_size():
    from scalesim.train.data import known_train_size

    assert known_train_size("fashion-mnist") == 60000
    assert known_train_size("fashion-mnist", 256) == 256
    assert known_train_size("synthetic", None, 8192) == 8192 and known_train_size("synthetic", 100, 8192) == 100
    assert known_train_size("npz", 256) is None          # a user's data: only training knows


def test_report_pools_sweeps_with_the_same_trial_settings(tmp_path):
    import pandas as pd

    from scalesim.report.arms import arm_table
    from scalesim.report.sweep import Sweep, pool
    from scalesim.sweep.driver import SweepSpec

    def sweep(name, base, rows):
        df = pd.DataFrame([{"trial_id": i, "status": "done", "arm": "x", "global_batch": b, "objective": o,
                            "run_dir": f"runs/t{i:04d}"} for i, (b, o) in enumerate(rows)])
        return Sweep(tmp_path / name, SweepSpec(base=base), df)

    a = sweep("main", {"epochs": 6}, [(64, 0.10), (128, 0.12)])
    b = sweep("seeds", {"epochs": 6}, [(128, 0.14)])
    c = sweep("other", {"epochs": 3}, [(64, 0.5)])
    pooled = pool([a, b, c])
    assert [p.path.name for p in pooled] == ["main+seeds", "other"]
    t = pooled[0].trials
    assert list(t["sweep"]) == ["main", "main", "seeds"]
    assert t["run_dir"].iloc[2] == str((tmp_path / "seeds" / "runs" / "t0000").resolve())
    assert arm_table(t)[1] == [[64, "0.1000 (n=1)"], [128, "0.1300 ± 0.0141 (n=2)"]]
