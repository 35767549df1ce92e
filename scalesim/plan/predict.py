"""`predict`: which node count, devices per node and global batch reach the training target within a
time budget, by a fitted model. The Python API behind `scalesim predict`:

    import scalesim
    from scalesim.plan.spec import TargetSpec, SpaceSpec
    plan = scalesim.predict("model.json", "1h", target=TargetSpec(epochs=90, dataset_size=1.28e6),
                            space=SpaceSpec(max_nodes=16))
"""
from __future__ import annotations

import math

from ..errors import UsageError
from ..units import positive_duration
from . import recommend
from .whatif import rests_on
from ..modelfile import as_model
from .spec import LRSpec, SpaceSpec, TargetSpec, build_space, build_target, lr_settings


def predict(model, target_time: float | str, *, target: TargetSpec = TargetSpec(), space: SpaceSpec = SpaceSpec(),
            lr: LRSpec = LRSpec(), cores_per_host: float | None = None, frontier_rows: int = 8) -> dict:
    """The plan (a JSON-serialisable dict; scalesim.plan.text.render prints it)."""
    m = as_model(model)
    if isinstance(target_time, str):
        target_time = positive_duration(target_time, "--target-time")
    lrs = lr_settings(lr, m.lr)
    params, boot = recommend.model_params(m)
    meta = {**(m.data or {}), **(m.meta or {})}
    tgt = build_target(target, m.stateff, lrs["ref_batch"], meta.get("dataset_size"))
    host = m.host or {}
    if cores_per_host is not None and not cores_per_host > 0:
        raise UsageError("--cores-per-host must be positive")
    cores = cores_per_host or float(host.get("cores_per_host") or math.inf)
    threads = float(host.get("threads_per_rank") or 1.0)
    sp = build_space(space, default_devices=recommend.default_devices(m), b_noise=params.b_noise,
                     cores_per_host=cores, threads_per_rank=threads)
    sp, notes = recommend.predictable_space(m, sp, explicit_nodes=bool(space.nodes or space.max_nodes))
    p = recommend.plan(params, sp, tgt, target_time=target_time, boot=boot, ranges=m.ranges, lr=lrs,
                       frontier_rows=frontier_rows, notes=notes)
    p["rests_on"] = rests_on(m, p)
    if m is not model:
        p["model"] = str(model)
    return p
