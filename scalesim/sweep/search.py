"""Trial proposals, always on the driver: `ask()` returns the next trial's parameters (None when
the search has proposed all it will), `tell(handle, value)` reports a result back.

    grid    the fixed list of space.grid, in order
    bayes   Optuna's TPE sampler (multivariate, constant liar for trials still in flight)
    random  Optuna's random sampler over the same space (the baseline TPE must beat)

Optuna's trials live only here: engines receive plain parameter dicts (a `trial.suggest_*` call
inside a Spark task returns a value but the driver's study would record nothing)."""
from __future__ import annotations

import threading

from ..errors import ScalesimError
from .space import Choice, Dim, Range

SEARCHES = ("grid", "bayes", "random")


class GridSearch:
    def __init__(self, trials: list[dict]):
        self._todo = list(trials)

    def ask(self, trial_id: int):
        return (self._todo.pop(0), None) if self._todo else (None, None)

    def tell(self, handle, value) -> None:
        pass

    def record(self, params: dict, value) -> None:
        pass


class OptunaSearch:
    """`bayes` (TPE) or `random` over dims for n_trials; trial i trains with seeds[i % len(seeds)]."""

    def __init__(self, kind: str, dims: tuple[Dim, ...], n_trials: int, seeds: tuple[int, ...],
                 sampler_seed: int = 0, startup_trials: int | None = None):
        try:
            import optuna
        except ImportError:
            raise ScalesimError("optuna is not installed: run `bash scripts/setup.sh`") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna, self.dims, self.n_trials, self.seeds = optuna, dims, n_trials, seeds
        if kind == "bayes":
            # Default TPE waits 10 random trials; a short sweep would then be random search.
            n0 = startup_trials if startup_trials is not None else max(2, min(10, n_trials // 3))
            sampler = optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=n0,
                                                 multivariate=True, constant_liar=True)
        else:
            sampler = optuna.samplers.RandomSampler(seed=sampler_seed)
        self.study = optuna.create_study(direction="minimize", sampler=sampler)
        self.distributions = {d.name: _distribution(optuna, d) for d in dims}
        self._lock = threading.Lock()

    def ask(self, trial_id: int):
        if trial_id >= self.n_trials:
            return None, None
        with self._lock:
            t = self.study.ask(self.distributions)
        return {**t.params, "seed": self.seeds[trial_id % len(self.seeds)]}, t

    def tell(self, handle, value) -> None:
        state = self.optuna.trial.TrialState
        with self._lock:
            if value is None or value != value:
                self.study.tell(handle, state=state.FAIL)
            else:
                self.study.tell(handle, float(value))

    def record(self, params: dict, value) -> None:
        """A trial the study did not ask for (an earlier session's, or a re-run): add it."""
        ft = self.optuna.trial
        p = {k: v for k, v in params.items() if k in self.distributions}
        if len(p) != len(self.distributions):
            return
        ok = value is not None and value == value
        with self._lock:
            self.study.add_trial(ft.create_trial(params=p, distributions=self.distributions,
                                                 value=float(value) if ok else None,
                                                 state=ft.TrialState.COMPLETE if ok else ft.TrialState.FAIL))


def _distribution(optuna, d: Dim):
    dist = optuna.distributions
    if isinstance(d, Choice):
        return dist.CategoricalDistribution(list(d.choices))
    assert isinstance(d, Range)
    if d.integer:
        return dist.IntDistribution(int(d.low), int(d.high), log=d.log)
    return dist.FloatDistribution(float(d.low), float(d.high), log=d.log)
