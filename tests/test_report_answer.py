"""The report opens with the answer: the configuration `scalesim predict` recommends for the same model
and target (node count, devices per node, global batch, learning-rate schedule, 5-95 % interval, what
it rests on), or without a target a summary of what was measured; and the multi-node figures."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

import report_synth as synth
from scalesim import modelfile
from scalesim.cli import main
from scalesim.model import perf
from scalesim.report import frames
from scalesim.schema import RunDir
from scalesim.units import format_duration

TARGET = ["--target-time", "1h", "--target-epochs", "10", "--dataset-size", "60000", "--max-nodes", "4"]


def _sections(text: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)"', text)


def _answer(text: str) -> str:
    i = text.index('<section id="answer"')
    return text[i:text.index("</section>", i)]


def _cells(answer_html: str) -> dict:
    import html

    return {k: html.unescape(v) for k, v in re.findall(r'<td data-key="([^"]+)">([^<]*)</td>', answer_html)}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    d = tmp_path_factory.mktemp("answer")
    return {"run": synth.make_run(d / "run-<i>evil</i>", tables=("steps",)).path,
            "model": synth.make_model(d / "model.json"), "dir": d}


def test_answer_is_first_and_equals_what_predict_prints(made, tmp_path, capsys):
    assert main(["predict", "--model", str(made["model"]), *TARGET, "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert main(["predict", "--model", str(made["model"]), *TARGET]) == 0
    printed = capsys.readouterr().out
    out = tmp_path / "r.html"
    assert main(["report", str(made["run"]), "--model", str(made["model"]), *TARGET, "--out", str(out)]) == 0
    text = out.read_text()
    assert _sections(text)[0] == "answer"
    ans = _answer(text)
    assert "data-spec" not in text[:text.index("</section>", text.index('<section id="answer"'))]  # no chart before it
    cfg = plan["cheapest"]
    assert cfg is not None and cfg["meets_target"]
    c = _cells(ans)
    assert int(c["nodes"]) == cfg["num_nodes"] and int(c["devices-per-node"]) == cfg["devices_per_node"]
    assert int(c["global-batch"]) == cfg["global_batch"] and int(c["devices"]) == cfg["num_replicas"]
    assert c["peak-learning-rate-eta"] == f"{cfg['lr']['peak_lr']:.4g}"
    assert c["learning-rate-schedule"] == cfg["lr"]["schedule"]
    assert c["predicted-time"] == format_duration(cfg["time"])
    iv = cfg["interval"]
    assert c["5-95-interval"] == f"{format_duration(iv['lo'])} - {format_duration(iv['hi'])} over {iv['n']} bootstrap fits"
    assert iv["n"] == 20 and iv["lo"] <= cfg["time"] <= iv["hi"]
    # the same words as the command: the answer's plan block is a part of predict's text output
    block = re.search(r'<pre class="plan">(.*?)</pre>', ans, re.S).group(1)
    import html

    for line in html.unescape(block).splitlines():
        assert line.strip() in printed, line
    # the numbers themselves, from the generating model: 10 epochs of 60,000 samples at this batch
    pl = perf.Placement(cfg["num_nodes"], cfg["devices_per_node"], synth.CORES, 1)
    assert cfg["step_time"] == pytest.approx(float(perf.step_time(synth.TRUE, pl, cfg["local_batch"])), rel=1e-9)
    assert cfg["steps"] == pytest.approx(10 * 60000 / cfg["global_batch"], rel=1e-9)
    assert cfg["lr"]["peak_lr"] == pytest.approx(0.1 * cfg["global_batch"] / 256)
    assert "What it rests on" in ans and ("measured: this exact" in ans or "polated" in ans)


def test_answer_rests_on_marks_extrapolation_and_unidentified(made, tmp_path):
    m = modelfile.load(made["model"])
    meta = {"notes": ["jitter = 0: needs three or more replica counts"], "unidentified": ["overhead_inter"]}
    m2 = m._replace(meta=meta, ranges={"num_replicas": [1, 8], "num_nodes": [1, 1], "local_batch": [32, 128]},
                    data={"fitted_configs": [f"nodes=1 replicas={r} local_batch={b}" for r in (1, 2) for b in (32, 64)]})
    modelfile.save(m2, tmp_path / "m2.json")
    out = tmp_path / "r.html"
    assert main(["report", "--model", str(tmp_path / "m2.json"), "--target-epochs", "10", "--dataset-size", "60000",
                 "--nodes", "1", "--devices-per-node", "1,2,4", "--global-batch", "64,128,256", "--out", str(out)]) == 0
    ans = _answer(out.read_text())
    assert "Measured (fitted): 4 configurations" in ans
    assert "Not pinned by the data: jitter = 0" in ans
    assert "Unidentified by the data: overhead_inter" in ans
    c = _cells(ans)
    # no time budget: the fastest configuration; batch 256 on 4 devices = 64 per device (inside 32-128)
    assert c["nodes"] == "1" and "interval" in ans


def test_without_target_summarises_measurements_and_best_config(made, tmp_path):
    out = tmp_path / "r.html"
    assert main(["report", str(made["run"]), "--out", str(out)]) == 0
    text = out.read_text()
    assert _sections(text)[0] == "answer" and "<i>evil</i>" not in text
    ans = _answer(text)
    s = frames.config_summary(RunDir(made["run"]).read_table("steps").assign(run_id="r"))
    best = s.loc[s["throughput"].idxmax()]
    assert f"Measured {len(s)} configurations in 1 run" in ans
    assert f"Best measured: {best['config']} at {best['throughput']:,.1f} samples/s" in ans
    assert "--target-time" in ans  # says how to get a recommendation


def test_target_without_model_or_bad_target_is_one_line_exit_2(made, tmp_path, capsys):
    for argv in ([str(made["run"]), *TARGET], [str(made["run"]), "--model", str(made["model"]), "--target-time", "1M"],
                 [str(made["run"]), "--model", str(made["model"]), "--target-epochs", "5"]):
        assert main(["report", *argv, "--out", str(tmp_path / "x.html")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("scalesim report: error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "x.html").exists()


# --- multi-node figures -------------------------------------------------------------------------
def test_multinode_figures_link_rate_ideal_scaling_and_heldout_nodes(made, tmp_path):
    rd = synth.make_multinode_run(tmp_path / "mn")
    val = pd.DataFrame([dict(config=f"nodes={n} replicas={n} local_batch={b}", quantity="step_time",
                             measured=1.0 + 0.1 * n, predicted=(1.0 + 0.1 * n) * (1 + e), seen=n <= 2)
                        for n, e in ((1, 0.01), (2, -0.02), (4, 0.10), (4, -0.06)) for b in (32,)])
    val.to_csv(tmp_path / "v.csv", index=False)
    m = modelfile.load(made["model"])._replace(
        data={"fitted_configs": [f"nodes={n} replicas={n} local_batch=32" for n in (1, 2)]})
    modelfile.save(m, tmp_path / "m.json")
    out = tmp_path / "r.html"
    assert main(["report", str(rd.path), "--model", str(tmp_path / "m.json"), "--validation", str(tmp_path / "v.csv"),
                 "--out", str(out)]) == 0
    text = out.read_text()
    secs = _sections(text)
    assert secs[:3] == ["answer", "scaling", "multinode"]
    sec = text[text.index('<section id="multinode"'):]
    sec = sec[:sec.index("</section>")]

    def spec(name):
        start = sec.index(f'id="chart-{name}-spec">') + len(f'id="chart-{name}-spec">')
        return json.loads(sec[start:sec.index("</script>", start)])

    bw = spec("multinode-busbw")
    rule = [d for d in bw["datasets"].values() if d and "label" in d[0]][0]
    assert rule == [{"mbs": pytest.approx(synth.LINK_BPS / 8e6), "label": "configured link 200mbit"}]
    pts = [d for d in bw["datasets"].values() if d and "busbw_mbs" in d[0]][0]
    assert max(p["busbw_mbs"] for p in pts) == pytest.approx(0.9 * synth.LINK_BPS / 8e6, rel=0.05)
    assert max(p["busbw_mbs"] for p in pts) < synth.LINK_BPS / 8e6
    sc = spec("throughput-vs-nodes")
    rows = [d for d in sc["datasets"].values() if d and "ideal" in d[0]][0]
    for r in rows:
        b = r["local_batch"]
        t1 = b / float(perf.step_time(synth.TRUE, perf.Placement(1, 1, synth.CORES, 1), b))  # 1 node's throughput
        assert r["ideal"] == pytest.approx(t1 * r["num_nodes"])
        assert r["efficiency"] == pytest.approx(r["throughput"] / r["ideal"])
    # held-out table: node count 4 was not fitted; its MAPE = mean(|10 %|, |-6 %|) = 8.0 %
    assert "<td>4</td><td>held out</td><td>8.0</td><td>-6.0 .. +10.0</td><td>2</td>" in sec
    assert "<td>2</td><td>fitted</td><td>2.0</td>" in sec
    assert "chart-heldout-nodes" in sec
