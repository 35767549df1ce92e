"""Model names -> Keras models returning logits: scalesim's ResNets, any keras.applications
constructor, or a user's own function (as Horovod's synthetic benchmark takes any application).

    resnet20 | resnet8 | resnet32 | resnet56 | resnet50     scalesim.train.resnet
    keras:MobileNet[,alpha=0.25,...]                         keras.applications.MobileNet(weights=None,
                                                             input_shape, classes, classifier_activation=None)
    my.module:make_model[,k=v,...]                           my.module.make_model(input_shape=...,
                                                             num_classes=..., **kw) -> keras.Model (logits)

Extra keyword arguments follow the name after commas (values as Python literals, else strings).
Bad names fail with a UsageError (exit 2) naming what is available.
"""
from __future__ import annotations

import ast
import importlib
import inspect
from typing import NamedTuple

from ..errors import UsageError
from . import MODELS

KERAS_PREFIX = "keras:"


class Arch(NamedTuple):
    kind: str        # 'builtin' | 'keras' | 'function'
    target: str      # resnet name, keras.applications attribute, or 'module:function'
    kwargs: dict


def parse_arch(text: str) -> Arch:
    """'keras:MobileNet,alpha=0.25' -> Arch('keras', 'MobileNet', {'alpha': 0.25}). No imports."""
    text = str(text or "").strip()
    head, *extra = [t.strip() for t in text.split(",")]
    kwargs = {}
    for item in extra:
        key, eq, value = item.partition("=")
        if not eq or not key.isidentifier():
            raise UsageError(f"bad model argument {item!r} in {text!r} (use NAME,key=value,...)")
        try:
            kwargs[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            kwargs[key] = value
    if head in MODELS:
        if kwargs:
            raise UsageError(f"{head} takes no arguments (use --width)")
        return Arch("builtin", head, {})
    if head.startswith(KERAS_PREFIX):
        name = head[len(KERAS_PREFIX):]
        if not name.isidentifier():
            raise UsageError(f"bad keras.applications name {name!r} in {text!r}")
        return Arch("keras", name, kwargs)
    module, colon, func = head.partition(":")
    if colon and module and func.isidentifier() and all(p.isidentifier() for p in module.split(".")):
        return Arch("function", head, kwargs)
    raise UsageError(f"unknown model {head!r}; choose one of {', '.join(MODELS)}, keras:<keras.applications "
                     f"name> (e.g. keras:MobileNet) or module:function returning a Keras model")


def _keras_application(name: str):
    import keras

    fn = getattr(keras.applications, name, None)
    if fn is None or not callable(fn) or inspect.ismodule(fn):
        known = sorted(n for n in dir(keras.applications) if n[:1].isupper() and callable(getattr(keras.applications, n)))
        raise UsageError(f"keras.applications has no model {name!r}; available: {', '.join(known)}")
    return fn


def _user_function(target: str):
    module, _, func = target.partition(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise UsageError(f"cannot import {module!r} for model {target!r} ({e}); is it on PYTHONPATH?") from None
    fn = getattr(mod, func, None)
    if not callable(fn):
        raise UsageError(f"{module} has no function {func!r} (model {target!r})")
    return fn


def keras_application_names() -> list[str] | None:
    """The model constructors keras.applications exports, read from Keras' own export list without
    importing Keras (which starts TensorFlow: seconds, and log lines on stderr); None if not found."""
    import importlib.util
    import re
    from pathlib import Path

    spec = importlib.util.find_spec("keras")
    if spec is None or not spec.submodule_search_locations:
        return None
    init = Path(list(spec.submodule_search_locations)[0]) / "applications" / "__init__.py"
    if not init.is_file():
        return None
    return sorted(n for n in set(re.findall(r"import (\w+) as \1\b", init.read_text())) if n[:1].isupper())


def check_arch(text: str, light: bool = False) -> Arch:
    """Parse and resolve the constructor without building it. light: for the command line, check a
    keras: name against Keras' export list without importing Keras (module:function is imported)."""
    arch = parse_arch(text)
    if arch.kind == "keras" and light:
        known = keras_application_names()
        if known is not None and arch.target not in known:
            raise UsageError(f"keras.applications has no model {arch.target!r}; available: "
                             f"{', '.join(n for n in known if n[:1].isupper())}")
    elif arch.kind == "keras":
        _keras_application(arch.target)
    elif arch.kind == "function":
        _user_function(arch.target)
    return arch


def build(text: str, input_shape, num_classes: int, seed: int = 0, width: int | None = None,
          ghost_batch=None, zero_init_residual: bool = True):
    """The model, returning logits. keras.applications models start from random weights (seeded)."""
    import keras

    arch = check_arch(text)
    if arch.kind == "builtin":
        from .resnet import build_model

        return build_model(arch.target, input_shape, num_classes, ghost_batch, seed, width, zero_init_residual)
    keras.utils.set_random_seed(seed)   # same seed on every rank: the same initial weights
    shape = tuple(int(d) for d in input_shape)
    try:
        if arch.kind == "keras":
            model = _keras_application(arch.target)(weights=None, input_shape=shape, classes=int(num_classes),
                                                    classifier_activation=None, **arch.kwargs)
        else:
            model = _user_function(arch.target)(input_shape=shape, num_classes=int(num_classes), **arch.kwargs)
    except (TypeError, ValueError) as e:
        raise UsageError(f"model {text!r} could not be built for input shape {shape} and {num_classes} classes: "
                         f"{str(e).splitlines()[0][:200]}") from None
    if not isinstance(model, keras.Model):
        raise UsageError(f"model {text!r}: {arch.target} returned {type(model).__name__}, not a keras.Model")
    out = model.outputs[0].shape if getattr(model, "outputs", None) else None
    if out is not None and out[-1] != num_classes:
        raise UsageError(f"model {text!r} has {out[-1]} outputs for {num_classes} classes")
    return model
