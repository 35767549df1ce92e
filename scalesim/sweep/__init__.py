"""Sweeps: many real training runs over global batch x learning-rate rule x warmup (x seeds),
proposed by a grid, a random search or Optuna's TPE, evaluated in parallel by Spark (or a local
process pool), one run directory per trial plus one table of trials. No TensorFlow at module level.

    space    trial parameters: grid lists and Bayesian range strings (pure)
    table    the table of trials, written atomically after every trial; resume bookkeeping
    trial    one trial: a `scalesim train` run in this process or across Horovod ranks
    engines  where trials run: Spark (local[K] or a cluster master) or a local process pool
    search   grid / random / TPE proposals (ask on the driver, tell back)
    driver   the sweep loop: plan, dispatch, record, resume
    curves   a sweep's runs as training curves at several global batches (for the stateff fit)
"""
