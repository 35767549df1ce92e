"""The analysis side of multi-node data (issue 13), pure: one rank needs no allreduce term even
where the intra-host link is unknown; validate knows what was fitted by run and configuration;
a what-if keeps the fitted overheads and every bootstrap replicate."""
import math

import numpy as np
import pandas as pd
import pytest

from scalesim import modelfile
from scalesim.fit.validate import row_keys, seen_by_fit
from scalesim.model.perf import CommParams, ComputeParams, PerfParams, Placement, step_time
from scalesim.plan import whatif

NAN = math.nan
PERF = PerfParams(ComputeParams(0.01, 0.005), CommParams(NAN, NAN, 0.0, 50e6, 1e6, overhead_intra=NAN,
                                                         overhead_inter=0.014), 1.0)


def _model(**kw):
    return modelfile.FittedModel(perf=PERF, bootstrap=[modelfile.perf_to_dict(PERF)] * 3,
                                 meta={"unidentified": ["overhead_intra", "alpha_intra", "bw_intra"],
                                       "notes": ["alpha_inter = 0: pinned"]},
                                 ranges={"num_nodes": [1, 2], "num_replicas": [1, 2]}, **kw)


def test_one_rank_needs_no_allreduce_even_with_unknown_intra_link():
    t = step_time(PERF, Placement(np.array([1, 2, 4]), np.array([1, 1, 1])), 32)
    assert np.isfinite(t).all()
    assert t[0] == pytest.approx(0.01 + 0.005 * 32)          # compute only, exactly
    assert t[1] == pytest.approx(0.17 + 0.014 + 1e6 / 50e6)   # + overhead + 2(n-1)/n M / bw


def test_single_rank_configurations_are_predictable_without_the_intra_link():
    m = _model()
    modelfile.check_predictable(m, [1, 2, 4], [1, 2, 4])
    with pytest.raises(Exception, match="bw_intra"):
        modelfile.check_predictable(m, [1], [2])              # 2 ranks on one host do need it


def test_validate_marks_fitted_by_run_and_config_not_by_label(tmp_path):
    a, b = tmp_path / "run500", tmp_path / "run200"
    fitted = pd.DataFrame({"source": [str(a)], "config": ["nodes=2 replicas=2 local_batch=32"]})
    m = _model(data={"fitted_rows": row_keys(fitted), "fitted_configs": list(fitted["config"])})
    other = pd.DataFrame({"source": [str(a), str(b)], "config": ["nodes=2 replicas=2 local_batch=32"] * 2})
    assert seen_by_fit(m, other).tolist() == [True, False]    # same label, other link rate: unseen


def test_what_if_replaces_one_input_and_keeps_overheads_and_bootstrap():
    w = whatif.override(_model(), inter_bw=25e6)
    assert w.perf.comm.bw_inter == 25e6 and w.perf.comm.overhead_inter == 0.014
    assert [b["comm"]["bw_inter"] for b in w.bootstrap] == [25e6] * 3
    assert all(b["comm"]["overhead_inter"] == 0.014 for b in w.bootstrap)
    notes = whatif.unpinned_assumptions(w, [4], [4])
    assert "alpha_inter = 0: pinned" in notes
    assert any("bw_inter" in n and "what-if" in n for n in notes)
    assert any(n.startswith("num_nodes up to 4, measured only up to 2") for n in notes)
