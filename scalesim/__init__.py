"""scalesim: predict data-parallel training scaling.

The Python API has the names of the commands (imports are lazy, so `import scalesim` stays light and
never imports TensorFlow):

    import scalesim
    model = scalesim.fit(["data/runs/<id>"], holdout="num_replicas>4")   # -> modelfile.FittedModel
    scalesim.save_model(model, "model.json")
    v = scalesim.validate("model.json", ["data/runs/<id>"])              # -> Validation(table, mape)
    plan = scalesim.predict("model.json", "1h", target=scalesim.TargetSpec(epochs=90, dataset_size=1.28e6))
    run = scalesim.RunDir("data/runs/<id>"); run.read_manifest(); run.read_table("steps")
"""
__version__ = "0.1.0"

# name -> (module, attribute)
_API = {
    "fit": ("scalesim.fit", None),
    "validate": ("scalesim.fit.validate", "validate"),
    "predict": ("scalesim.plan.predict", "predict"),
    "simulate": ("scalesim.plan.simulate", "simulate"),
    "RunDir": ("scalesim.schema", "RunDir"),
    "load_model": ("scalesim.modelfile", "load"),
    "save_model": ("scalesim.modelfile", "save"),
    "TargetSpec": ("scalesim.plan.spec", "TargetSpec"),
    "SpaceSpec": ("scalesim.plan.spec", "SpaceSpec"),
    "LRSpec": ("scalesim.plan.spec", "LRSpec"),
}
__all__ = sorted(_API)


def __getattr__(name):
    if name not in _API:
        raise AttributeError(f"module 'scalesim' has no attribute {name!r}")
    import importlib

    module, attr = _API[name]
    mod = importlib.import_module(module)
    return mod if attr is None else getattr(mod, attr)
