"""scalesim: predict data-parallel training scaling."""
__version__ = "0.1.0"
