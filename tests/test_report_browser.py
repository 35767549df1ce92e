"""Open reports in a real headless Chromium with the network disabled: every chart container must
hold a rendered SVG, with no script error or console message. Saves a screenshot of the full
report to test-artifacts/report.png."""
from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path


import report_synth as synth
from scalesim.cli import main

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
# Any request leaving the machine fails: no DNS, and a proxy on a closed port.
OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9"]


def chromium() -> str:
    exe = os.environ.get("SCALESIM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "chromium not found: scripts/setup.sh installs Debian's `chromium` (apt-get install -y chromium)"
    return exe


def run_chromium(url: str, tmp: Path, *extra) -> subprocess.CompletedProcess:
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={tmp / 'chromium-profile'}", "--enable-logging=stderr", "--v=0",
           "--virtual-time-budget=15000", *OFFLINE, *extra, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


class _Dom(HTMLParser):
    """Body status attributes, the error box text, and which chart containers hold an svg/canvas."""

    def __init__(self):
        super().__init__()
        self.body, self.charts, self.errors = {}, {}, ""
        self._chart, self._depth, self._in_errors = None, 0, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "pre" and a.get("id") == "report-errors":
            self._in_errors = True
        if tag == "div":
            if self._chart is None and "data-spec" in a:
                self._chart, self._depth = a["id"], 0
                self.charts[self._chart] = {"rendered": a.get("data-rendered"), "svg": False}
            elif self._chart is not None:
                self._depth += 1
        if self._chart is not None and tag in ("svg", "canvas"):
            self.charts[self._chart]["svg"] = True

    def handle_endtag(self, tag):
        if tag == "pre":
            self._in_errors = False
        if tag == "div" and self._chart is not None:
            if self._depth == 0:
                self._chart = None
            else:
                self._depth -= 1

    def handle_data(self, data):
        if self._in_errors:
            self.errors += data


def render(path: Path, tmp: Path):
    proc = run_chromium(path.resolve().as_uri(), tmp, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = _Dom()
    dom.feed(proc.stdout)
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return dom, console


def test_network_is_really_disabled(tmp_path):
    page = tmp_path / "probe.html"
    page.write_text('<html><body><p id="s">pending</p><script src="https://cdn.jsdelivr.net/npm/vega@5"'
                    ' onload="document.getElementById(\'s\').textContent=\'loaded\'"'
                    ' onerror="document.getElementById(\'s\').textContent=\'blocked\'"></script></body></html>')
    proc = run_chromium(page.as_uri(), tmp_path, "--dump-dom")
    assert '<p id="s">blocked</p>' in proc.stdout


def test_full_report_renders_every_chart_offline(tmp_path):
    d = tmp_path / "in"
    run = synth.make_run(d / "run-8", hostname=synth.EVIL, config_note="<img src=x onerror=alert(2)>").path
    out = tmp_path / "report.html"
    assert main(["report", str(run), "--model", str(synth.make_model(d / "m.json")),
                 "--validation", str(synth.make_validation(d / "v.csv")),
                 "--prediction", str(synth.make_prediction(d / "p.json")), "--out", str(out)]) == 0
    dom, console = render(out, tmp_path)
    assert dom.body.get("data-done") == "1", "embedding never finished"
    assert dom.errors.strip() == "" and console == [], (dom.errors, console)
    # 10: the synthetic model's stateff fit (s_min, b_noise) adds the steps-to-target chart
    assert len(dom.charts) == 10 and dom.body.get("data-charts") == "10" and dom.body.get("data-rendered") == "10"
    for cid, c in dom.charts.items():
        assert c["rendered"] == "1" and c["svg"], cid

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    proc = run_chromium(out.resolve().as_uri(), tmp_path, "--window-size=1280,7400", f"--screenshot={shot}")
    assert proc.returncode == 0 and shot.stat().st_size > 100_000, proc.stderr[-2000:]


def test_report_with_missing_tables_renders_what_it_has(tmp_path):
    run = synth.make_run(tmp_path / "steps-only", tables=("steps",)).path
    out = tmp_path / "partial.html"
    assert main(["report", str(run), "--out", str(out)]) == 0
    dom, console = render(out, tmp_path)
    assert dom.errors.strip() == "" and console == [], (dom.errors, console)
    assert sorted(dom.charts) == ["chart-scaling-efficiency", "chart-step-split", "chart-throughput"]
    assert all(c["svg"] for c in dom.charts.values()) and dom.body.get("data-rendered") == "3"


def test_answer_and_multinode_figures_render_offline(tmp_path):
    import pandas as pd

    d = tmp_path / "in"
    run = synth.make_multinode_run(d / "mn").path
    pd.DataFrame([dict(config=f"nodes={n} replicas={n} local_batch=32", quantity="step_time", measured=1.0,
                       predicted=1.0 + 0.02 * n) for n in (1, 2, 4)]).to_csv(d / "v.csv", index=False)
    out = tmp_path / "answer.html"
    assert main(["report", str(run), "--model", str(synth.make_model(d / "m.json")), "--validation", str(d / "v.csv"),
                 "--target-time", "1h", "--target-epochs", "10", "--dataset-size", "60000", "--max-nodes", "4",
                 "--out", str(out)]) == 0
    dom, console = render(out, tmp_path)
    assert dom.body.get("data-done") == "1" and dom.errors.strip() == "" and console == [], (dom.errors, console)
    assert {"chart-multinode-busbw", "chart-throughput-vs-nodes", "chart-heldout-nodes"} <= set(dom.charts)
    for cid, c in dom.charts.items():
        assert c["rendered"] == "1" and c["svg"], cid
