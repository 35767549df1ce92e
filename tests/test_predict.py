"""The configuration search against a brute-force loop on a model with known parameters."""
import itertools
import math

import numpy as np
import pytest

from scalesim import modelfile
from scalesim.plan import recommend, search
from scalesim.plan import text as plan_text
from scalesim.model.perf import CommParams, ComputeParams, PerfParams, Placement, step_time

PERF = PerfParams(ComputeParams(alpha_c=0.02, beta_c=0.004, kappa=1.0),
                  CommParams(alpha_intra=5e-5, bw_intra=2e9, alpha_inter=2e-4, bw_inter=1.25e8,
                             grad_bytes=4 * 1.1e6, algorithm="ring"), gamma=1.5)
B_NOISE, S_MIN = 400.0, 3000.0
LR = {"ref_lr": 0.1, "ref_batch": 256, "warmup_epochs": 5}


def make_model(path, *, perf=PERF, stateff=True, bootstrap=(), ranges=None, host=None, meta=None):
    m = modelfile.FittedModel(
        perf, {"b_noise": B_NOISE, "s_min": S_MIN, "target": {"test_acc": 0.85}} if stateff else None,
        list(bootstrap), {}, ranges if ranges is not None else
        {"num_replicas": [1, 4], "num_nodes": [1, 2], "local_batch": [16, 256]},
        host=host if host is not None else {"cores_per_host": 4, "threads_per_rank": 1}, lr=LR, meta=meta or {})
    modelfile.save(m, path)
    return path


def brute_force(perf, nodes, devices, batches, max_local, cores, target_time, steps_fn):
    """Plain loops and scalar calls: the reference the vectorised search must agree with."""
    rows = []
    for n_nodes, g, B in itertools.product(nodes, devices, batches):
        n = n_nodes * g
        if B < n:
            continue
        rank = min(max(1, int(round(B / n))), int(max(batches)) // n)
        accum = math.ceil(rank / max_local)
        local = math.ceil(rank / accum)
        rank = local * accum
        gb = n * rank
        if gb > max(batches):
            continue
        t_step = float(step_time(perf, Placement(n_nodes, g, cores, 1.0), local, accum))
        t = steps_fn(gb) * t_step
        rows.append((n_nodes, g, gb, t, n * t / 3600))
    fastest = min(rows, key=lambda r: (r[3], r[4]))
    ok = [r for r in rows if r[3] <= target_time]
    cheapest = min(ok, key=lambda r: (r[4], r[3])) if ok else None
    return rows, cheapest, fastest


def _key(cfg):
    return cfg["num_nodes"], cfg["devices_per_node"], cfg["global_batch"]


@pytest.mark.parametrize("target_time,feasible", [(600.0, False), (1500.0, True), (4000.0, True)])
def test_recommendation_is_the_brute_force_optimum(target_time, feasible):
    nodes, devices = list(range(1, 13)), [1, 2, 4]
    batches = search.geometric_batches(16, 4096, 24)
    space = search.Space(nodes, devices, batches, (), 64, 4.0, 1.0)
    target = search.Target("stateff", S_MIN, 256, "test")
    p = recommend.plan(search.ParamSet(PERF, B_NOISE), space, target, target_time=target_time, lr=LR)
    rows, cheapest, fastest = brute_force(PERF, nodes, devices, batches, 64, 4.0, target_time,
                                          lambda B: S_MIN * (1 + B_NOISE / B))
    assert p["searched"] == len({(r[0], r[1], r[2]) for r in rows})
    table = search.evaluate(search.ParamSet(PERF, B_NOISE), space, target)
    got = {(int(a), int(b), int(c)): t for a, b, c, t in
           zip(table["num_nodes"], table["devices_per_node"], table["global_batch"], table["time"])}
    assert all(got[r[:3]] == pytest.approx(r[3], rel=1e-12) for r in rows)
    assert table["accum_steps"].max() > 1  # accumulation is part of the search
    assert _key(p["fastest"]) == fastest[:3]
    assert p["fastest"]["time"] == pytest.approx(fastest[3], rel=1e-12)
    assert p["feasible"] is feasible and (cheapest is not None) is feasible
    if not feasible:
        assert p["cheapest"] is None and p["fastest"]["time"] > target_time
        return
    assert _key(p["cheapest"]) == cheapest[:3]
    assert p["cheapest"]["device_hours"] == pytest.approx(cheapest[4], rel=1e-12)
    assert p["cheapest"]["time"] <= target_time


def test_frontier_is_exactly_the_pareto_set():
    space = search.Space(list(range(1, 9)), [1, 2], search.geometric_batches(16, 2048, 16), (), None, 4.0, 1.0)
    target = search.Target("samples", 50 * 60000, 256, "50 epochs")
    table = search.evaluate(search.ParamSet(PERF, None), space, target)
    front = set(search.pareto(table["time"], table["device_hours"]).tolist())
    t, c = table["time"], table["device_hours"]
    for i in range(t.size):
        others = np.arange(t.size) != i
        strictly_beaten = np.any(others & (((t < t[i]) & (c <= c[i])) | ((t <= t[i]) & (c < c[i]))))
        matched = np.any(others & (t <= t[i]) & (c <= c[i]))
        if i in front:
            assert not strictly_beaten
        else:
            assert matched
    assert 3 <= len(front) < t.size


def test_infeasible_target_reports_best_time():
    space = search.Space([1, 2, 4], [1], [64, 256, 1024], (), None)
    target = search.Target("samples", 1e9, 256, "huge")
    p = recommend.plan(search.ParamSet(PERF, None), space, target, target_time=1.0, lr=LR)
    assert p["feasible"] is False and p["cheapest"] is None
    assert p["fastest"]["time"] > 1.0 and p["fastest"]["meets_target"] is False
    text = plan_text.render(p)
    assert "NO configuration meets 1 s" in text and "best achievable time" in text


def test_one_configuration_by_hand():
    """4 nodes x 2 ranks, B = 512: 64 per rank as 2 x 32 micro-batches; ring over 8 ranks across nodes."""
    space = search.Space([4], [2], [512], (), 32, 4.0, 1.0)
    target = search.Target("samples", 512 * 1000, 256, "1000 steps at 512")
    table = search.evaluate(search.ParamSet(PERF, None), space, target)
    c, m = PERF.compute, PERF.comm
    tc = c.alpha_c + c.beta_c * 32                       # 2 ranks on 4 cores: no contention
    ts = 2 * 7 * m.alpha_inter + 2 * 7 / 8 * m.grad_bytes / m.bw_inter
    step = tc + (tc ** 1.5 + ts ** 1.5) ** (1 / 1.5)
    assert (table["local_batch"][0], table["accum_steps"][0], table["global_batch"][0]) == (32, 2, 512)
    assert table["step_time"][0] == pytest.approx(step, rel=1e-12)
    assert table["steps"][0] == pytest.approx(1000)
    assert table["time"][0] == pytest.approx(1000 * step)
    assert table["device_hours"][0] == pytest.approx(8 * 1000 * step / 3600)
    one = 2 * tc  # one device, same micro-batches, no allreduce
    assert table["scaling_eff"][0] == pytest.approx(one / step)


def test_targets_from_flags_and_noise_scale():
    t = search.Target("samples", 90 * 1000 * 256, 256, "x")
    # at the reference batch the target is exactly the stated number of steps, whatever B_noise is
    assert search.steps_needed(t, 256, 400.0) == pytest.approx(90 * 1000)
    assert search.steps_needed(t, 256, None) == pytest.approx(90 * 1000)
    # without a noise scale samples are conserved; with one, S(B) = S_min (1 + B_noise / B)
    assert search.steps_needed(t, 1024, None) == pytest.approx(90 * 1000 / 4)
    s_min = 90 * 1000 / (1 + 400 / 256)
    assert search.steps_needed(t, 1024, 400.0) == pytest.approx(s_min * (1 + 400 / 1024))
    assert search.stat_eff(t, np.array([256, 1024]), 400.0) == pytest.approx([1.0, 656 / 1424])


def test_intervals_are_percentiles_over_bootstrap_sets():
    factors = np.linspace(0.8, 1.2, 21)
    boot = [search.ParamSet(PERF._replace(compute=PERF.compute._replace(beta_c=PERF.compute.beta_c * f)), B_NOISE)
            for f in factors]
    space = search.Space([2], [2], [256], (), None, 4.0, 1.0)
    target = search.Target("stateff", S_MIN, 256, "t")
    table = search.evaluate(search.ParamSet(PERF, B_NOISE), space, target)
    times = [float(search.evaluate(b, space, target)["time"][0]) for b in boot]
    iv = search.intervals(boot, space, target, table, [0], target_time=float(np.median(times)))[0]
    assert iv["lo"] == pytest.approx(np.percentile(times, 5)) and iv["hi"] == pytest.approx(np.percentile(times, 95))
    assert iv["lo"] < table["time"][0] < iv["hi"]
    assert iv["p_meet"] == pytest.approx(11 / 21)


def test_extrapolation_marks():
    space = search.Space([1, 8], [2], [64], (), None)
    target = search.Target("samples", 1e6, 256, "t")
    table = search.evaluate(search.ParamSet(PERF, None), space, target)
    ranges = {"num_replicas": [1, 4], "num_nodes": [1, 2], "local_batch": [16, 256]}
    inside = [i for i in range(2) if table["num_nodes"][i] == 1][0]
    outside = 1 - inside
    assert search.extrapolation(ranges, table, inside) == []
    notes = search.extrapolation(ranges, table, outside)
    assert any(n.startswith("num_nodes 8") for n in notes) and any(n.startswith("local_batch 4") for n in notes)


def test_predict_end_to_end_on_model_file(tmp_path, capsys):
    boot = []
    for f in (0.9, 1.0, 1.1):
        d = modelfile.perf_to_dict(PERF._replace(compute=PERF.compute._replace(beta_c=PERF.compute.beta_c * f)))
        d["b_noise"] = B_NOISE * f
        boot.append(d)
    path = make_model(tmp_path / "m.json", bootstrap=boot)
    from scalesim.cli import main
    assert main(["predict", "--model", str(path), "--target-time", "30m", "--max-nodes", "8"]) == 0
    out = capsys.readouterr().out
    assert "Cheapest configuration that meets 30m 00s" in out and "5-95 %" in out
    assert "eta = 0.1 x" in out and "device-hours" in out and "EXTRAPOLATION" in out
