"""`scalesim sweep` and `scalesim report SWEEP_DIR` from the command line: bad input is one line
and exit 2 (nothing written); a real grid and a real 3-trial TPE search on the local engine (tiny
ResNet-8 trials), then the report draws them."""
import json

import pytest

from scalesim.cli import main
from scalesim.sweep import table

TINY = ["--arch", "resnet8", "--width", "8", "--train-subset", "256", "--test-subset", "256", "--epochs", "1",
        "--engine", "local", "--parallel", "1"]


@pytest.mark.parametrize("argv, message", [
    (["--search", "bayes"], "needs --space"),
    (["--space", "ref_lr=0.1..1"], "--space is for --search bayes/random"),
    (["--global-batch", "256,0"], "global_batch must be positive"),
    (["--lr-rule", "cubic"], "unknown lr rule"),
    (["--engine", "yarn"], "unknown engine"),
    (["--spark-master", "http://x"], "bad --spark-master"),
    (["--search", "bayes", "--space", "global_batch=log:0..8"], "bad --space range"),
    (["--search", "random", "--space", "ref_lr=0.1..1", "--warmup-epochs", "0,5"], "takes one value"),
    (["--arch", "resnet99"], "resnet99"),
    (["--objective", "accuracy"], "unknown objective"),
    (["--global-batch", "100", "--devices-per-node", "3"], "not a multiple of the 3 ranks"),
    (["--trials", "many"], "--trials"),
])
def test_bad_input_one_line_exit_2(argv, message, tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["sweep", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scalesim sweep: error:") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_resume_of_a_non_sweep_is_exit_2(tmp_path, capsys):
    assert main(["sweep", "--resume", str(tmp_path)]) == 2
    assert "not a sweep directory" in capsys.readouterr().err


@pytest.mark.slow
def test_grid_then_report(tmp_path, capsys):
    out = tmp_path / "grid"
    assert main(["sweep", *TINY, "--global-batch", "32,64", "--lr-rule", "linear", "--warmup-epochs", "0",
                 "--out", str(out)]) == 0
    rows = table.read(out)
    assert [(r["global_batch"], r["status"]) for r in rows] == [(32, "done"), (64, "done")]
    assert all(0 <= r["objective"] <= 1 for r in rows)
    assert "best: trial" in capsys.readouterr().out
    html = tmp_path / "grid.html"
    assert main(["report", str(out), "-o", str(html)]) == 0
    text = html.read_text()
    assert "Sweep grid" in text and "test_error vs global batch" in text
    assert main(["sweep", *TINY, "--global-batch", "32", "--out", str(out)]) == 2   # never overwritten


@pytest.mark.slow
def test_bayes_asks_and_tells(tmp_path, capsys):
    out = tmp_path / "bayes"
    assert main(["sweep", *TINY, "--search", "bayes", "--trials", "3", "--objective", "train_loss",
                 "--space", "global_batch=log:32..128,ref_lr=log:0.01..1", "--out", str(out)]) == 0
    rows = table.read(out)
    assert [r["status"] for r in rows] == ["done"] * 3
    for r in rows:
        p = json.loads(r["params"])
        assert 32 <= p["global_batch"] <= 128 and 0.01 <= p["ref_lr"] <= 1 and r["objective"] == r["train_loss"]
    html = tmp_path / "bayes.html"
    assert main(["report", str(out), "-o", str(html)]) == 0
    assert "trial history" in html.read_text() and "best trial" in html.read_text()
