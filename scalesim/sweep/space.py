"""Trial parameters (pure): the grid of a grid sweep and the search space of a Bayesian/random one.

A trial's parameters are a plain dict over PARAMS (plus `seed`), so they pickle to any engine.
Space strings: comma-separated `name=spec`, spec one of
    log:LO..HI     log-uniform          global_batch=log:128..8192
    LO..HI         uniform              warmup_epochs=0..10
    A|B|C          categorical          lr_rule=linear|none
Integer-valued names (global_batch, ref_batch) always sample integers; another name samples
integers when both bounds are written as integers (warmup_epochs=0..10)."""
from __future__ import annotations

import itertools
from typing import NamedTuple, Union

from ..errors import UsageError

# name -> type; the TrainConfig fields a sweep may vary.
PARAMS = {"global_batch": int, "ref_lr": float, "warmup_epochs": float, "lr_rule": str,
          "ref_batch": int, "momentum": float, "weight_decay": float}
INTEGER = ("global_batch", "ref_batch")
LR_RULES = ("linear", "sqrt", "none")
# A --points file may also give a trial its own budget: (the 2x-longer baseline of a study).
POINT_ONLY = {"epochs": int, "decay_epochs": tuple}


class Range(NamedTuple):
    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False


class Choice(NamedTuple):
    name: str
    choices: tuple


Dim = Union[Range, Choice]


def parse_space(text: str) -> tuple[Dim, ...]:
    """'global_batch=log:128..8192,ref_lr=log:0.01..1,warmup_epochs=0..10' -> dimensions."""
    dims, seen = [], set()
    for item in (t.strip() for t in (text or "").split(",")):
        if not item:
            continue
        name, eq, spec = item.partition("=")
        name = name.strip().replace("-", "_")
        if not eq or name not in PARAMS:
            raise UsageError(f"bad --space entry {item!r}: use name=spec with name one of {', '.join(PARAMS)}")
        if name in seen:
            raise UsageError(f"--space names {name} twice")
        seen.add(name)
        dims.append(_parse_dim(name, spec.strip(), item))
    if not dims:
        raise UsageError("--space is empty; e.g. 'global_batch=log:128..8192,ref_lr=log:0.01..1'")
    return tuple(dims)


def _parse_dim(name: str, spec: str, item: str) -> Dim:
    if "|" in spec or PARAMS[name] is str:
        choices = tuple(c.strip() for c in spec.split("|") if c.strip())
        if not choices:
            raise UsageError(f"bad --space entry {item!r}: no choices")
        return Choice(name, tuple(_typed(name, c) for c in choices))
    log = spec.startswith("log:")
    lo_s, sep, hi_s = spec[4 if log else 0:].partition("..")
    try:
        lo, hi = float(lo_s), float(hi_s)
    except ValueError:
        raise UsageError(f"bad --space entry {item!r}: use LO..HI, log:LO..HI or A|B") from None
    if not sep or not lo < hi or (log and lo <= 0):
        raise UsageError(f"bad --space range {item!r}: need LO < HI (and LO > 0 for log)")
    integer = name in INTEGER or (_is_int(lo_s) and _is_int(hi_s))
    if name in INTEGER and lo < 1:
        raise UsageError(f"bad --space range {item!r}: {name} must be at least 1")
    return Range(name, int(lo) if integer else lo, int(hi) if integer else hi, log, integer)


def _is_int(s: str) -> bool:
    return s.strip().lstrip("-").isdigit()


def _typed(name: str, text):
    try:
        v = PARAMS[name](text)
    except ValueError:
        raise UsageError(f"{name}: {text!r} is not a {PARAMS[name].__name__}") from None
    if name == "lr_rule" and v not in LR_RULES:
        raise UsageError(f"unknown lr rule {v!r}; choose from {', '.join(LR_RULES)}")
    if PARAMS[name] is not str and v < 0 or name in INTEGER and v < 1:
        raise UsageError(f"{name} must be positive (got {text!r})")
    return v


def parse_list(name: str, text: str) -> tuple:
    """'256,1024,4096' -> (256, 1024, 4096) typed as PARAMS[name]."""
    vals = tuple(_typed(name, t.strip()) for t in str(text).split(",") if t.strip())
    if not vals:
        raise UsageError(f"--{name.replace('_', '-')} needs at least one value")
    return vals


def seed_list(seeds: int | str) -> tuple[int, ...]:
    """--seeds 3 -> (0, 1, 2); --seeds 5,7 -> (5, 7)."""
    text = str(seeds)
    if "," not in text:
        try:
            n = int(text)
        except ValueError:
            raise UsageError(f"--seeds must be a count or a list like 0,1,2 (got {text!r})") from None
        if n < 1:
            raise UsageError(f"--seeds must be at least 1 (got {n})")
        return tuple(range(n))
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise UsageError(f"--seeds must be a count or a list like 0,1,2 (got {text!r})") from None


def grid(axes: dict, seeds: tuple[int, ...]) -> list[dict]:
    """Every combination of axes {name: values} x seeds, seeds innermost (so a partial sweep
    already has complete arms)."""
    names = list(axes)
    return [{**dict(zip(names, combo)), "seed": s}
            for combo in itertools.product(*(axes[n] for n in names)) for s in seeds]


def parse_points(items, source: str = "--points") -> list[dict]:
    """An explicit list of trials (a study's points, in run order): each a dict over PARAMS,
    POINT_ONLY and `seed` (default 0). Checked here so that a bad file fails before any trial."""
    if not isinstance(items, list) or not items:
        raise UsageError(f"{source}: need a non-empty JSON list of trials, e.g. "
                         '[{"global_batch": 256, "lr_rule": "linear", "warmup_epochs": 5, "seed": 0}]')
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise UsageError(f"{source}: trial {i} is not an object")
        unknown = sorted(set(item) - set(PARAMS) - set(POINT_ONLY) - {"seed"})
        if unknown:
            raise UsageError(f"{source}: trial {i} has unknown parameter {unknown[0]!r}; use "
                             f"{', '.join([*PARAMS, *POINT_ONLY, 'seed'])}")
        p = {}
        for k, v in item.items():
            if k == "seed":
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    raise UsageError(f"{source}: trial {i}: seed must be a non-negative integer (got {v!r})")
                p[k] = v
            elif k == "decay_epochs":
                if not isinstance(v, list) or any(isinstance(e, bool) or not isinstance(e, (int, float)) or not e > 0
                                                  for e in v):
                    raise UsageError(f"{source}: trial {i}: decay_epochs must be a list of positive epochs")
                p[k] = [float(e) for e in v]
            elif k == "epochs":
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise UsageError(f"{source}: trial {i}: epochs must be a positive integer (got {v!r})")
                p[k] = v
            else:
                if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                    raise UsageError(f"{source}: trial {i}: {k} must be a {PARAMS[k].__name__} (got {v!r})")
                p[k] = _typed(k, v)
        p.setdefault("seed", 0)
        out.append(p)
    return out


def arm(params: dict) -> str:
    """The arm of a trial: everything but global batch and seed ('lr_rule=linear,warmup_epochs=5';
    a --points trial with its own epochs is an arm of its own)."""
    return ",".join(f"{k}={_fmt(params[k])}" for k in sorted(params) if k not in ("global_batch", "seed"))


def _fmt(v) -> str:
    if isinstance(v, (list, tuple)):
        return "|".join(_fmt(e) for e in v)
    return f"{v:g}" if isinstance(v, float) else str(v)
