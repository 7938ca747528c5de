"""Optimizer name -> class, for the entry points' --optimizer flag.

Modules are imported on lookup so that asking for one optimizer does not
import the others.
"""

import importlib

_OPTIMIZERS = {
    "HierarchicalRNN": ("optimizer.hierarchical_rnn", "HierarchicalRNN"),
    "CoordinatewiseRNN": ("optimizer.coordinatewise_rnn", "CoordinatewiseRNN"),
    "GlobalLearningRate": ("optimizer.global_learning_rate",
                           "GlobalLearningRate"),
    "LearningRateSchedule": ("optimizer.learning_rate_schedule",
                             "LearningRateSchedule"),
    "TrainableAdam": ("optimizer.trainable_adam", "TrainableAdam"),
}

NAMES = tuple(_OPTIMIZERS)


def optimizer_class(name):
  """The optimizer class registered as `name`.

  Raises:
    ValueError: unknown name.
  """
  if name not in _OPTIMIZERS:
    raise ValueError("unknown optimizer %r; expected one of %s" %
                     (name, ", ".join(NAMES)))
  module, attribute = _OPTIMIZERS[name]
  return getattr(importlib.import_module(module), attribute)
