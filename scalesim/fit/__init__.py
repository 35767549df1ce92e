"""Fitting (no TensorFlow): observations from run directories and traces (observations, traces), which
parameters the data identify (identify), the performance fit (perf), statistical efficiency (stateff),
validation against measurements (validate) and the Python API `fit()` (api).

`scalesim.fit` is this package and also callable: `scalesim.fit(sources, ...)` is `scalesim.fit.api.fit`
(a package and a function cannot share the name otherwise, and the API is named like the command)."""
import sys
import types


def fit(data, **kw):
    """Fit a model to run directories, traces or curves (see scalesim.fit.api.fit)."""
    from .api import fit as _fit

    return _fit(data, **kw)


class _CallablePackage(types.ModuleType):
    def __call__(self, data, **kw):
        return fit(data, **kw)


sys.modules[__name__].__class__ = _CallablePackage
