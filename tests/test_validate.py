"""`validate`: predictions of measured configurations against what was measured, per quantity."""
import numpy as np
import pandas as pd
import pytest

import fit_synth as fs
from scalesim import modelfile
from scalesim.fit.api import fit
from scalesim.fit.validate import render, validate
from scalesim.errors import DataError


def test_true_model_has_zero_error_on_noise_free_data(tmp_path):
    fs.write_trace(tmp_path / "t.csv", sd=0.0)
    model = modelfile.FittedModel(perf=fs.TRACE_TRUE)
    v = validate(model, tmp_path / "t.csv")
    assert set(v.mape) == {"step_time", "sync_time"}
    assert v.mape["step_time"]["mape"] < 1e-9 and v.mape["sync_time"]["mape"] < 1e-9
    assert v.mape["step_time"]["n"] == len(fs.PLACEMENTS) * len(fs.BATCHES)
    # sync_time is compared only where there is something to synchronise
    assert v.mape["sync_time"]["n"] == 4 * (len(fs.PLACEMENTS) - 1)


def test_only_unseen_uses_the_holdout_and_writes_every_quantity(tmp_path):
    fs.make_run(tmp_path / "run", sd=0.02)
    m = fit(tmp_path / "run", holdout="num_replicas>=8", bootstrap=0)
    modelfile.save(m, tmp_path / "m.json")
    v = validate(tmp_path / "m.json", tmp_path / "run", only_unseen=True)
    t = v.table
    assert not t["seen"].any() and set(t["quantity"]) == {"step_time", "compute_time", "allreduce_time"}
    assert t["config"].str.contains("replicas=8").all()
    assert v.mape["step_time"]["mape"] < 6
    all_rows = validate(tmp_path / "m.json", tmp_path / "run")
    assert all_rows.table["seen"].any() and len(all_rows.table) > len(t)
    text = render(all_rows, show_all=True)
    assert "MAPE step_time" in text and "(fitted)" in text
    assert np.allclose(t["error_pct"], 100 * (t["predicted"] - t["measured"]) / t["measured"])


def test_nothing_unseen_is_an_error(tmp_path):
    fs.write_trace(tmp_path / "t.csv")
    m = fit(tmp_path / "t.csv", bootstrap=0)
    with pytest.raises(DataError, match="nothing unseen"):
        validate(m, tmp_path / "t.csv", only_unseen=True)
    pd.DataFrame({"iteration": [0, 1], "metric": [0, 1]}).to_csv(tmp_path / "validation-8.csv", index=False)
    with pytest.raises(DataError, match="no steps-to-target fit"):   # the model has no curve fit
        validate(m, tmp_path / "validation-8.csv")


def test_training_curves_give_steps_to_target_rows(tmp_path):
    """Curves not used in the fit: predicted vs measured steps to the target, in the same table (and CSV)
    as the step times."""
    from scalesim.model import stateff

    s_min, b_noise = 400.0, 700.0
    fs.write_trace(tmp_path / "t.csv")
    for B in (128, 256, 1024, 4096):
        # accuracy rises linearly in steps and crosses 0.8 at exactly S(B)
        S = float(stateff.steps_to_target(B, s_min, b_noise))
        it = np.linspace(S / 8, 2 * S, 16)
        pd.DataFrame({"iteration": it, "metric": 0.8 * it / S}).to_csv(tmp_path / f"validation-{B}.csv", index=False)
    m = fit([tmp_path / "t.csv", tmp_path / "validation-128.csv", tmp_path / "validation-1024.csv"],
            bootstrap=0, target=0.8)
    v = validate(m, [tmp_path / "t.csv"] + [tmp_path / f"validation-{B}.csv" for B in (128, 256, 1024, 4096)])
    rows = v.table[v.table["quantity"] == "steps_to_target"].set_index("config")
    assert set(rows.index) == {"global_batch=128", "global_batch=256", "global_batch=1024", "global_batch=4096"}
    assert rows.loc["global_batch=128", "seen"] and not rows.loc["global_batch=256", "seen"]
    for B in (256, 4096):
        r = rows.loc[f"global_batch={B}"]
        assert r["measured"] == pytest.approx(stateff.steps_to_target(B, s_min, b_noise), rel=1e-6)
        assert abs(r["error_pct"]) < 3
    assert (v.table["quantity"] == "step_time").any() and "steps_to_target" in v.mape
    unseen = validate(m, [tmp_path / f"validation-{B}.csv" for B in (128, 256, 1024, 4096)], only_unseen=True)
    assert sorted(unseen.table["config"]) == ["global_batch=256", "global_batch=4096"]
