"""Held-out checks of a model fitted on emulated nodes (see README.md here for the commands):
  nodes     fit on <= 2 nodes, predict the held-out node counts, compare with their measurement
  what-if   the same model with only the link rate replaced (scalesim.plan.whatif, as `simulate
            --link` does), compared with a campaign measured at that rate
Step-time MAPE per held-out node count, via scalesim.validate (the same comparison `validate` prints).
    .venv/bin/python experiments/multinode/evaluate.py --fit RUN... --heldout RUN... [--whatif-link 200mbit --whatif RUN...]
"""
import argparse
import json
import sys
from pathlib import Path

import scalesim
from scalesim.cluster.plan import parse_rate
from scalesim.plan import whatif

HERE = Path(__file__).resolve().parent


def per_node_mape(model, runs) -> list[dict]:
    v = scalesim.validate(model, runs)
    t = v.table[v.table["quantity"] == "step_time"].copy()
    t["num_nodes"] = t["config"].str.extract(r"nodes=(\d+)")[0].astype(int)
    t["local_batch"] = t["config"].str.extract(r"local_batch=(\d+)")[0].astype(int)
    out = []
    for n, g in t.groupby("num_nodes"):
        out.append({"num_nodes": int(n), "configs": int(len(g)), "mape_pct": round(float(g["error_pct"].abs().mean()), 2),
                    "rows": [{"local_batch": int(r.local_batch), "measured_s": round(r.measured, 4),
                              "predicted_s": round(r.predicted, 4), "error_pct": round(r.error_pct, 2)}
                             for r in g.sort_values("local_batch").itertuples()]})
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fit", nargs="+", required=True)
    ap.add_argument("--heldout", nargs="*", default=[])
    ap.add_argument("--whatif-link")
    ap.add_argument("--whatif", nargs="*", default=[])
    ap.add_argument("--bootstrap", type=int, default=30)
    ap.add_argument("--out", default=str(HERE / "results.json"))
    a = ap.parse_args()
    model = scalesim.fit(a.fit, bootstrap=a.bootstrap, partial=True)  # as `scalesim fit` (no --strict)
    res = {"fit_runs": a.fit, "fitted": model.meta["fitted"], "notes": model.meta["notes"],
           "perf": {"compute": model.perf.compute._asdict(), "comm": model.perf.comm._asdict(), "gamma": model.perf.gamma}}
    if a.heldout:
        res["nodes"] = per_node_mape(model, a.heldout)
        res["nodes_rests_on"] = whatif.unpinned_assumptions(model, [r["num_nodes"] for r in res["nodes"]],
                                                            [r["num_nodes"] for r in res["nodes"]])
    if a.whatif:
        # As `simulate --link` does: the link rate as given replaces the fitted bw_inter (bytes/s);
        # overheads, gamma, cv and compute stay as fitted.
        bw = parse_rate(a.whatif_link) / 8
        wm = whatif.override(model, inter_bw=bw)
        res["whatif"] = {"link": a.whatif_link, "bw_inter": bw, "nodes": per_node_mape(wm, a.whatif),
                         "rests_on": whatif.unpinned_assumptions(wm, [2, 4], [2, 4])}
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(json.dumps({k: v for k, v in res.items() if k != "perf"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
