"""Moved to scalesim.model.noise (one implementation shared by measure, train and scalesim.keras);
this name stays for existing imports."""
from ..model.noise import DEFAULT_BETA, NoiseTracker, local_mean_scale, noise_batches  # noqa: F401
