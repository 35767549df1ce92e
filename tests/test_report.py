"""`scalesim report`: inputs, derived numbers, escaping, missing data and bad input. The test that
opens the report in a real browser is in test_report_browser.py."""
from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

import report_synth as synth
from scalesim.cli import main
from scalesim.model import perf
from scalesim.report import frames, inputs
from scalesim.schema import RunDir

EVIL_NOTE = "<img src=x onerror=alert(2)>"


class _Tags(HTMLParser):
    """Counts real start tags (script bodies are not parsed, so strings in the bundle don't count)."""

    def __init__(self):
        super().__init__()
        self.starts, self.spec_ids, self.chart_ids = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.starts.append(tag)
        if tag == "script" and a.get("type") == "application/json":
            self.spec_ids.append(a.get("id"))
        if tag == "div" and "data-spec" in a:
            self.chart_ids.append(a.get("id"))


def _tags(text: str) -> _Tags:
    t = _Tags()
    t.feed(text)
    return t


@pytest.fixture(scope="module")
def inputs_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("report-inputs")
    rd = synth.make_run(d / "run-<i>evil</i>", hostname=synth.EVIL, config_note=EVIL_NOTE)
    # a hostile configuration id ends up inside chart data (JSON in a <script> element)
    extra = rd.read_table("noise").head(50).assign(config_id=synth.EVIL).drop(columns=["run_id"], errors="ignore")
    rd.write_part("noise", "evil", extra)
    return {"run": rd.path, "model": synth.make_model(d / "model.json"),
            "validation": synth.make_validation(d / "validation.csv"),
            "prediction": synth.make_prediction(d / "prediction.json"), "dir": d}


def _report(args, out):
    rc = main(["report", *map(str, args), "--out", str(out)])
    return rc, out.read_text() if out.exists() else ""


def test_full_report_escapes_user_strings_and_has_no_cdn(inputs_dir, tmp_path):
    i = inputs_dir
    rc, text = _report([i["run"], "--model", i["model"], "--validation", i["validation"],
                        "--prediction", i["prediction"]], tmp_path / "r.html")
    assert rc == 0
    for raw in (synth.EVIL, EVIL_NOTE, "<i>evil</i>"):
        assert raw not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text            # hostname in the facts table
    assert "&lt;img src=x onerror=alert(2)&gt;" in text                 # config value
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in text  # config id inside chart JSON
    tags = _tags(text)
    charts = ["throughput", "scaling-efficiency", "step-split", "allreduce-time", "allreduce-busbw",
              "gradient-noise", "statistical-efficiency", "steps-to-target", "time-to-target", "predicted-vs-measured"]
    assert tags.chart_ids == [f"chart-{c}" for c in charts]
    assert tags.spec_ids == [f"chart-{c}-spec" for c in charts]
    # 3 page scripts (error capture, inlined Vega bundle, embedding) + one JSON spec per chart
    assert tags.starts.count("script") == 3 + len(charts)
    assert "img" not in tags.starts and "link" not in tags.starts
    lower = text.lower()
    for cdn in ("cdn.jsdelivr", "unpkg.com", "cdnjs", "googleapis", "<script src", "cdn."):
        assert cdn not in lower, cdn
    assert 'class="missing"' not in text  # every input was given: nothing reported missing
    for spec_id in tags.spec_ids:          # specs are valid JSON after the browser's unescaping
        start = text.index(f'id="{spec_id}">') + len(f'id="{spec_id}">')
        spec = json.loads(text[start:text.index("</script>", start)])
        assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
        assert spec.get("title") or spec.get("spec", {}).get("title")


def test_png_export_writes_one_png_per_chart(inputs_dir, tmp_path):
    i = inputs_dir
    rc = main(["report", str(i["run"]), "--model", str(i["model"]), "--out", str(tmp_path / "p.html"), "--png"])
    assert rc == 0
    pngs = sorted(p.name for p in tmp_path.glob("p-*.png"))
    assert pngs == sorted(f"p-{c}.png" for c in ("throughput", "scaling-efficiency", "step-split", "allreduce-time",
                                                "allreduce-busbw", "gradient-noise", "statistical-efficiency",
                                                "steps-to-target"))
    for p in tmp_path.glob("p-*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000


def _notes(text):
    return [line for line in text.splitlines() if 'class="missing"' in line]


def test_missing_tables_still_render_with_notes(tmp_path):
    synth.make_run(tmp_path / "steps-only", tables=("steps",))
    rc, text = _report([tmp_path / "steps-only"], tmp_path / "a.html")
    assert rc == 0
    assert _tags(text).chart_ids == ["chart-throughput", "chart-scaling-efficiency", "chart-step-split"]
    notes = " ".join(_notes(text))
    for expected in ("No allreduce table", "No noise table", "No gradient noise scale", "No model file",
                     "No prediction file", "No validation file"):
        assert expected in notes, expected
    assert "table allreduce</th><td>missing" in text

    rd = synth.make_run(tmp_path / "no-steps", tables=("allreduce",))
    # Steps not measured yet (a manifest saying "done" without rows is a damaged run: refused).
    m = rd.read_manifest()
    for c in m["configs"]:
        c["status"] = "pending"
    rd.write_manifest(m)
    rc, text = _report([tmp_path / "no-steps"], tmp_path / "b.html")
    assert rc == 0
    assert _tags(text).chart_ids == ["chart-allreduce-time", "chart-allreduce-busbw"]
    assert "No usable steps table" in " ".join(_notes(text))


def test_production_only_steps_have_no_split_but_still_scale(tmp_path):
    rd = synth.make_run(tmp_path / "prod", tables=("steps",))
    steps = rd.read_table("steps")
    for p in (rd.path / "steps").glob("*.parquet"):
        p.unlink()
    rd.write_part("steps", "all", steps[steps["mode"] == "production"])
    rc, text = _report([rd.path], tmp_path / "c.html")
    assert rc == 0
    assert _tags(text).chart_ids == ["chart-throughput", "chart-scaling-efficiency"]
    assert "No instrumented steps" in " ".join(_notes(text))


@pytest.mark.parametrize("case", ["no-dir", "not-a-run", "bad-model", "wrong-schema-model", "csv-columns",
                                  "empty-prediction", "out-is-dir", "nothing", "corrupt-part"])
def test_bad_input_is_one_line_exit_2(case, inputs_dir, tmp_path, capsys):
    run = str(inputs_dir["run"])
    (tmp_path / "plain").mkdir()
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text('{"schema": "something/1"}')
    (tmp_path / "v.csv").write_text("a,b\n1,2\n")
    (tmp_path / "p.json").write_text('{"hello": [1, 2]}')
    out = ["--out", str(tmp_path / "r.html")]
    if case == "corrupt-part":
        broken = synth.make_run(tmp_path / "broken", tables=("allreduce",)).path
        (broken / "steps").mkdir()
        (broken / "steps" / "n1-b32.parquet").write_bytes(b"PAR1 not really parquet")
    argv = {"no-dir": [str(tmp_path / "missing")] + out,
            "not-a-run": [str(tmp_path / "plain")] + out,
            "bad-model": [run, "--model", str(tmp_path / "bad.json")] + out,
            "wrong-schema-model": [run, "--model", str(tmp_path / "other.json")] + out,
            "csv-columns": [run, "--validation", str(tmp_path / "v.csv")] + out,
            "empty-prediction": [run, "--prediction", str(tmp_path / "p.json")] + out,
            "out-is-dir": [run, "--out", str(tmp_path / "plain")],
            "nothing": out,
            "corrupt-part": [str(tmp_path / "broken")] + out}[case]
    assert main(["report", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scalesim report: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert not (tmp_path / "r.html").exists()


# numbers behind the charts ---------------------------------------------------------------------

def test_summary_throughput_and_efficiency_match_the_generating_model(tmp_path):
    rd = synth.make_run(tmp_path / "r", tables=("steps",))
    s = frames.config_summary(rd.read_table("steps").assign(run_id="r"))
    assert len(s) == len(synth.REPLICAS) * len(synth.LOCAL)
    for row in s.itertuples():
        true = float(perf.throughput(synth.TRUE, perf.Placement(1, row.num_replicas, synth.CORES, 1), row.local_batch))
        assert row.throughput == pytest.approx(true, rel=0.05)  # 2 % step-time jitter in the synthetic data
        assert row.throughput == pytest.approx(row.global_batch / row.step_time_production)
    assert (s.loc[s.num_replicas == 1, "efficiency"] == 1.0).all()
    # 8 ranks on 2 cores: contention (kappa = 1) makes each rank 4x slower -> efficiency ~ 1/4
    assert s.loc[s.num_replicas == 8, "efficiency"].to_numpy() == pytest.approx(0.25, rel=0.08)
    assert frames.scale_axis(s) == ("num_replicas", "Ranks (one host)")


def test_model_curves_pass_through_the_model_and_band_brackets_it(tmp_path):
    rd = synth.make_run(tmp_path / "r", tables=("steps", "allreduce"))
    model = inputs.load_model(synth.make_model(tmp_path / "m.json"))
    boots = inputs.bootstrap_perfs(model)
    assert len(boots) == 20
    s = frames.config_summary(rd.read_table("steps").assign(run_id="r"))
    curve = frames.model_scaling(model, boots, s, "num_replicas", (synth.CORES, 1.0))
    at8 = curve[(curve.x == 8) & (curve.local_batch == 64)].iloc[0]
    assert at8.throughput == pytest.approx(float(perf.throughput(synth.TRUE, perf.Placement(1, 8, synth.CORES, 1), 64)))
    assert (curve.thr_lo <= curve.throughput + 1e-9).all() and (curve.throughput <= curve.thr_hi + 1e-9).all()
    assert curve.loc[curve.x == 1, "efficiency"].to_numpy() == pytest.approx(1.0)

    meas = frames.allreduce_measured(rd.read_table("allreduce"))
    assert set(meas.num_replicas) == {2, 4, 8}  # one rank has nothing to reduce
    n = meas.num_replicas
    assert meas.busbw_gbs.to_numpy() == pytest.approx((meas.size_bytes / meas.time * 2 * (n - 1) / n / 1e9).to_numpy())
    fit = frames.allreduce_fitted(model, meas)
    big = fit[fit.series == "8 ranks"].iloc[-1]
    assert big.time == pytest.approx(float(perf.allreduce_time(synth.TRUE.comm, big.size_bytes, 1, 8)))


def test_multi_node_runs_use_node_count_axis_and_ranks_per_node():
    rows = []
    for nodes in (1, 2, 4):
        for step in range(3):
            rows.append(dict(run_id="x", config_id=f"n{nodes}", num_nodes=nodes, num_replicas=4 * nodes,
                             local_batch=32, global_batch=128 * nodes, rank=0, step=step, mode="production",
                             step_time=0.1 * (1 + 0.1 * nodes)))
    s = frames.config_summary(pd.DataFrame(rows))
    assert frames.scale_axis(s) == ("num_nodes", "Node count")
    assert s.efficiency.to_numpy() == pytest.approx([1.0, 1.1 / 1.2, 1.1 / 1.4])
    assert list(s.config) == ["1 node x 4, b=32", "2 nodes x 4, b=32", "4 nodes x 4, b=32"]


def test_b_noise_from_noise_table_is_ratio_of_means():
    rng = np.random.default_rng(0)
    steps = np.arange(400)
    sqr = 2.0 * rng.normal(1, 0.2, len(steps))
    noise = pd.DataFrame(dict(run_id="r", config_id="c", step=steps, grad_sqr=sqr, grad_var=1000.0,
                              b_simple=1000.0 / sqr))
    bn, source, boots = frames.b_noise(None, noise)
    assert bn == pytest.approx(500.0, rel=0.05) and "noise table" in source and boots == []
    curve = frames.stateff_curve(bn, [], [64, 512])
    at = np.interp(bn, curve.global_batch, curve.efficiency)
    assert at == pytest.approx(0.5, abs=0.01)  # E_min/E(B) = 1/2 at B = B_noise


def test_prediction_reader_tolerates_other_key_names(tmp_path):
    p = tmp_path / "p.json"
    p.write_text(json.dumps({"frontier": [
        {"nodes": 2, "batch": 512, "time": {"median": 7200, "lo": 7000, "hi": 7500}, "cost": 4},
        {"nodes": 4, "batch": 512, "time": None}],
        "best": {"nodes": 4, "batch": 512}, "target_time": "1h"}))
    pred = inputs.load_prediction(p)
    assert list(pred.grid.num_nodes) == [2, 4] and list(pred.grid.global_batch) == [512, 512]
    assert pred.grid.time_s.iloc[0] == 7200 and pd.isna(pred.grid.time_s.iloc[1])
    assert [m[:3] for m in pred.marks] == [("best", 4.0, 512.0)] and pred.facts == {"target_time": "1h"}
    assert pred.marks[0][3] == "nodes 4, batch 512"


def test_validation_reader_accepts_minimal_csv(tmp_path):
    p = tmp_path / "v.csv"
    p.write_text("Measured,Predicted\n2.0,2.2\n4.0,3.0\nnan,1\n")
    v = inputs.load_validation(p)
    assert list(v.quantity) == ["value", "value"] and list(v.config) == ["row 1", "row 2"]
    assert v.error_pct.to_numpy() == pytest.approx([10.0, -25.0])


def test_report_from_a_real_run_dir_layout_has_facts(inputs_dir, tmp_path):
    rc, text = _report([inputs_dir["run"]], tmp_path / "f.html")
    assert rc == 0
    for fact in ("tensorflow", "2.21.0", "horovod", "0.28.1", "resnet20", "272474", "threads per rank"):
        assert fact in text, fact
    m = RunDir(inputs_dir["run"]).read_manifest()
    assert text.count("<td>done</td>") == len(m["configs"])
