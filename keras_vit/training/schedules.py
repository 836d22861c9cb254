"""Learning-rate schedules: linear warmup, then cosine or linear decay (paper App. B).

`warmup_decay` is a small pure function of the step (nanoGPT's style), so it
can be read, plotted and tested by value; `WarmupDecay` wraps it as a Keras
`LearningRateSchedule` that optimizers take and `.keras` files save.
"""

import math

import keras
from keras import ops

from keras_vit.errors import ArgumentError

DECAYS = ("cosine", "linear")


def warmup_decay(step, peak_learning_rate, total_steps, warmup_steps=0,
                 decay="cosine", end_learning_rate=0.0):
    """The learning rate at `step` (a Python number).

    Linear warmup from 0 to `peak_learning_rate` over `warmup_steps` (the
    first step already gets peak / warmup_steps), then a cosine or linear
    decay to `end_learning_rate` at `total_steps`, constant after.

    Example:

    >>> warmup_decay(5, 1e-3, total_steps=100, warmup_steps=10)
    0.0006
    """
    if warmup_steps > 0 and step < warmup_steps:
        return peak_learning_rate * (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    progress = min(max((step - warmup_steps) / span, 0.0), 1.0)
    if decay == "cosine":
        factor = 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        factor = 1.0 - progress
    return end_learning_rate + (peak_learning_rate - end_learning_rate) * factor


@keras.saving.register_keras_serializable(package="keras_vit")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup then cosine or linear decay, as a Keras schedule.

    Computes exactly `warmup_decay` with `keras.ops`, so any backend and
    `jit_compile` can trace it.

    Args:
        peak_learning_rate: float, the rate at the end of warmup.
        total_steps: int, optimizer steps of the whole run (warmup included).
        warmup_steps: int, steps of linear warmup. Defaults to 0.
        decay: "cosine" or "linear". Defaults to "cosine".
        end_learning_rate: float, the rate at `total_steps`. Defaults to 0.

    Example:

    >>> schedule = WarmupDecay(1e-3, total_steps=1000, warmup_steps=100)
    >>> optimizer = keras.optimizers.AdamW(schedule, weight_decay=0.05)
    """

    def __init__(self, peak_learning_rate, total_steps, warmup_steps=0,
                 decay="cosine", end_learning_rate=0.0):
        if decay not in DECAYS:
            raise ArgumentError(
                "Received an invalid value for argument `decay`, expected "
                f"'cosine' or 'linear'. Received: decay={decay!r}"
            )
        if int(total_steps) <= 0 or int(warmup_steps) < 0:
            raise ArgumentError(
                "Received an invalid value for argument `total_steps`, expected "
                "a positive integer (and `warmup_steps` >= 0). Received: "
                f"total_steps={total_steps!r}, warmup_steps={warmup_steps!r}"
            )
        self.peak_learning_rate = float(peak_learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.decay = decay
        self.end_learning_rate = float(end_learning_rate)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak, end = self.peak_learning_rate, self.end_learning_rate
        warmup = float(max(self.warmup_steps, 1))
        warm = peak * (step + 1.0) / warmup
        span = float(max(self.total_steps - self.warmup_steps, 1))
        progress = ops.clip((step - float(self.warmup_steps)) / span, 0.0, 1.0)
        if self.decay == "cosine":
            factor = 0.5 * (1.0 + ops.cos(math.pi * progress))
        else:
            factor = 1.0 - progress
        decayed = end + (peak - end) * factor
        if self.warmup_steps == 0:
            return decayed
        return ops.where(step < float(self.warmup_steps), warm, decayed)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "decay": self.decay,
            "end_learning_rate": self.end_learning_rate,
        }
