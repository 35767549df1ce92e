"""The training recipe as configuration (no TensorFlow here, so the CLI can validate it)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..model.schedule import LRSchedule, validate


@dataclass(frozen=True)
class Recipe:
    """Goyal et al. 2017's large-batch recipe: eta = ref_lr * B / ref_batch ('linear'; 'sqrt' and
    'none' for comparison), linear warmup from ref_lr over warmup_epochs, x decay_factor at each of
    decay_epochs, momentum SGD with momentum correction, weight decay optionally not applied to
    BN gamma/beta and biases (scalesim.train.step implements the update)."""

    ref_lr: float = 0.1
    ref_batch: int = 256
    rule: str = "linear"
    warmup_epochs: float = 5.0
    decay_epochs: tuple = field(default_factory=tuple)
    decay_factor: float = 0.1
    momentum: float = 0.9
    momentum_correction: bool = True
    weight_decay: float = 1e-4
    wd_exclude_bn_bias: bool = True

    def schedule(self, global_batch: int) -> LRSchedule:
        """The LR schedule for a global batch; raises UsageError on bad values."""
        return validate(LRSchedule(global_batch, self.ref_lr, self.ref_batch, self.rule,
                                   self.warmup_epochs, tuple(self.decay_epochs), self.decay_factor))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["decay_epochs"] = list(self.decay_epochs)
        return d
