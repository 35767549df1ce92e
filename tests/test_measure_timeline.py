"""Horovod Timeline parser: per-tensor activity table from a Chrome-trace file as Horovod writes
it (one trace process per tensor, nested B/E events, microsecond timestamps)."""
import json

import pytest

from scalesim.errors import DataError
from scalesim.measure import timeline

EVENTS = [
    {"name": "process_name", "ph": "M", "pid": 1, "args": {"name": "HorovodAllreduce_grad_0"}},
    {"ph": "B", "name": "NEGOTIATE_ALLREDUCE", "ts": 100, "pid": 1},
    {"ph": "E", "ts": 400, "pid": 1},
    {"ph": "B", "name": "ALLREDUCE", "ts": 500, "pid": 1},
    {"ph": "B", "name": "GLOO_ALLREDUCE", "ts": 510, "pid": 1},
    {"ph": "E", "ts": 1510, "pid": 1},
    {"ph": "E", "ts": 1600, "pid": 1, "args": {"dtype": "float32", "shape": "[1000, 2]"}},
    {"ph": "B", "name": "ALLREDUCE", "ts": 2000, "pid": 1},
    {"ph": "B", "name": "GLOO_ALLREDUCE", "ts": 2000, "pid": 1},
    {"ph": "E", "ts": 5000, "pid": 1},
    {"ph": "E", "ts": 5100, "pid": 1, "args": {"dtype": "float32", "shape": "[1000, 2]"}},
    {"name": "process_name", "ph": "M", "pid": 2, "args": {"name": "HorovodAllreduce_grad_1"}},
    {"ph": "B", "name": "ALLREDUCE", "ts": 600, "pid": 2},
    {"ph": "E", "ts": 800, "pid": 2, "args": {"dtype": "float64", "shape": "[10]"}},
]


def _write(path, events, close=True):
    text = "[\n" + ",\n".join(json.dumps(e) for e in events) + ("\n]" if close else ",\n{\"ph\": \"B\", \"na")
    path.write_text(text)
    return path


def _row(df, tensor, activity):
    r = df[(df.tensor == tensor) & (df.activity == activity)]
    assert len(r) == 1
    return r.iloc[0]


def test_per_tensor_table(tmp_path):
    df = timeline.parse(_write(tmp_path / "t.json", EVENTS))
    assert list(df.columns) == timeline.COLUMNS
    a = _row(df, "HorovodAllreduce_grad_0", "ALLREDUCE")
    assert a["count"] == 2 and a["depth"] == 0
    assert a["total_time"] == pytest.approx((1100 + 3100) * 1e-6)
    assert a["mean_time"] == pytest.approx(2100e-6)
    assert a["size_bytes"] == 1000 * 2 * 4
    inner = _row(df, "HorovodAllreduce_grad_0", "GLOO_ALLREDUCE")
    assert inner["depth"] == 1 and inner["total_time"] == pytest.approx(4000e-6)
    assert _row(df, "HorovodAllreduce_grad_0", "NEGOTIATE_ALLREDUCE")["total_time"] == pytest.approx(300e-6)
    assert _row(df, "HorovodAllreduce_grad_1", "ALLREDUCE")["size_bytes"] == 80
    assert df["total_time"].is_monotonic_decreasing


def test_truncated_trace_of_a_killed_job_keeps_complete_events(tmp_path):
    full = timeline.parse(_write(tmp_path / "a.json", EVENTS))
    cut = timeline.parse(_write(tmp_path / "b.json", EVENTS, close=False))
    assert full.equals(cut)


def test_not_a_timeline(tmp_path):
    (tmp_path / "x.json").write_text("hello")
    with pytest.raises(DataError):
        timeline.parse(tmp_path / "x.json")
    with pytest.raises(DataError):
        timeline.parse(tmp_path / "missing.json")


def test_allreduce_table_from_a_users_timeline(tmp_path):
    # Negotiation marks: instant events named by the rank that became ready (here ranks 0 and 1).
    marks = [{"ph": "X", "name": "0", "ts": 150, "pid": 1, "dur": 0},
             {"ph": "X", "name": "1", "ts": 390, "pid": 1, "dur": 0}]
    path = _write(tmp_path / "t.json", EVENTS[:2] + marks + EVENTS[2:])
    assert timeline.is_timeline(path) and not timeline.is_timeline(tmp_path / "missing.json")
    (tmp_path / "m.json").write_text('{"schema": "scalesim.model/1"}')
    assert not timeline.is_timeline(tmp_path / "m.json")
    df = timeline.read_allreduce(path)
    assert list(df.columns) == ["num_replicas"] + timeline.ALLREDUCE_COLUMNS
    g0 = df[df.tensor == "HorovodAllreduce_grad_0"].iloc[0]
    # two ALLREDUCE calls of 1.1 ms and 3.1 ms, one 0.3 ms negotiation; 1000x2 float32 = 8000 bytes
    assert g0["num_replicas"] == 2 and g0["calls"] == 2 and g0["size_bytes"] == 8000
    assert g0["allreduce_time"] == pytest.approx(2.1e-3) and g0["negotiate_time"] == pytest.approx(3e-4)
    assert g0["total_time"] == pytest.approx(2 * (2.1e-3 + 3e-4))
    assert g0["algbw"] == pytest.approx(8000 / 2.1e-3)
    g1 = df[df.tensor == "HorovodAllreduce_grad_1"].iloc[0]
    assert g1["size_bytes"] == 80 and g1["negotiate_time"] == 0.0 and g1["calls"] == 1


def test_fit_and_report_read_a_users_timeline(tmp_path):
    """A timeline is a `fit` source (fused tensors -> one allreduce message) and a report section."""
    from scalesim.fit.observations import read_source
    from scalesim.report.html import ReportRequest, write_report

    marks = [{"ph": "X", "name": "0", "ts": 150, "pid": 1, "dur": 0},
             {"ph": "X", "name": "1", "ts": 390, "pid": 1, "dur": 0}]
    path = _write(tmp_path / "t.json", EVENTS[:2] + marks + EVENTS[2:])
    table = timeline.read_allreduce(path)
    ar = read_source(path).allreduce
    assert set(ar["num_replicas"]) == {2.0} and set(ar["num_nodes"]) == {1.0}
    assert ar["size_bytes"].sum() == pytest.approx(table["size_bytes"].sum())
    out = tmp_path / "r.html"
    assert write_report(ReportRequest([str(path)], out=str(out))) == 0
    page = out.read_text()
    assert "Horovod Timeline: allreduce per tensor" in page and "HorovodAllreduce_grad_0" in page
