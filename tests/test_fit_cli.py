"""`scalesim fit` and `scalesim validate` through the real CLI: outputs, and one-line errors with exit 2."""
import json
import subprocess
import sys

import pytest

import fit_synth as fs


def _cli(*argv, cwd):
    return subprocess.run([sys.executable, "-m", "scalesim.cli", *map(str, argv)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_fit_then_validate(tmp_path):
    trace = fs.write_trace(tmp_path / "t.csv", sd=0.02)
    r = _cli("fit", trace, "--out", tmp_path / "m.json", "--holdout", "num_replicas>4", "--bootstrap", "5",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "in-sample MAPE step_time" in r.stdout and "pair_sharing" in r.stdout
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["schema"] == "scalesim.model/1" and len(m["bootstrap"]) == 5 and m["data"]["holdout"] == "num_replicas>4"
    r = _cli("validate", "--model", tmp_path / "m.json", trace, "--only-unseen", "--out", tmp_path / "e.csv",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "MAPE step_time" in r.stdout and "MAPE sync_time" in r.stdout
    head = (tmp_path / "e.csv").read_text().splitlines()[0]
    assert head == "config,quantity,measured,predicted,error_pct,seen,source"


BAD = {
    "missing source": (["fit", "nope.csv", "--out", "m.json"], "no such file"),
    "bad holdout": (["fit", "t.csv", "--out", "m.json", "--holdout", "num_replicas>>4"], "holdout"),
    "bad fix": (["fit", "t.csv", "--out", "m.json", "--fix", "bw_inter"], "--fix needs NAME=VALUE"),
    "unknown fix": (["fit", "t.csv", "--out", "m.json", "--fix", "speed=3"], "not a parameter"),
    "one node count, strict": (["fit", "one.csv", "--out", "m.json", "--strict"], "between hosts: cannot fit"),
    "bad trace": (["fit", "bad.csv", "--out", "m.json"], "row 2"),
    "negative bootstrap": (["fit", "t.csv", "--out", "m.json", "--bootstrap", "-1"], "--bootstrap"),
    "missing model": (["validate", "--model", "none.json", "t.csv"], "no such file"),
    "not a model": (["validate", "--model", "t.csv", "t.csv"], "not valid JSON"),
    "wrong json": (["validate", "--model", "list.json", "t.csv"], "not a scalesim model file"),
}


@pytest.mark.parametrize("argv,msg", BAD.values(), ids=BAD.keys())
def test_bad_input_is_one_line_exit_2(tmp_path, argv, msg):
    fs.write_trace(tmp_path / "t.csv")
    fs.write_trace(tmp_path / "one.csv", placements=("1", "2", "4"))
    (tmp_path / "bad.csv").write_text("placement,local_bsz,step_time\n1,32,-1\n")
    (tmp_path / "list.json").write_text("[1, 2]")
    r = _cli(*argv, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"scalesim {argv[0]}: error:") and msg in lines[0], r.stderr
    assert not (tmp_path / "m.json").exists()


def test_default_fit_marks_unidentified_link_unknown_as_null(tmp_path):
    import json

    fs.write_trace(tmp_path / "one.csv", placements=("1", "2", "4"))
    r = _cli("fit", "one.csv", "--out", "m.json", "--bootstrap", "0", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "bw_inter unknown" in r.stdout
    d = json.loads((tmp_path / "m.json").read_text())  # strict JSON: no NaN tokens
    assert d["perf"]["comm"]["bw_inter"] is None and d["perf"]["comm"]["bw_intra"] > 0
