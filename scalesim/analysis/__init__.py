"""Fitting, validation, prediction and simulation on top of scalesim.model (no TensorFlow)."""
