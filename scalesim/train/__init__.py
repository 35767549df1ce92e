"""TensorFlow + Horovod training core. Importing this package imports no TensorFlow: data,
recipe, hvdrun, progress and the worker's argument definitions are TF-free; resnet and step
import TensorFlow/Keras."""

MODELS = ("resnet8", "resnet20", "resnet32", "resnet56", "resnet50")
