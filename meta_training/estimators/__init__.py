"""Meta-gradient estimators behind one interface (`base.GradientEstimator`).

  truncated_backprop  the original: backpropagation through each partial
                      unroll, one meta-update per unroll.

`--gradient_estimator` (`config.MetaOptimizer.gradient_estimator`) picks one
by name; a new estimator is one module and one `register` call.
"""

from meta_training.estimators import base
from meta_training.estimators import truncated_backprop

_REGISTRY = {}


def register(name, estimator_class):
  """Makes `estimator_class` (a `base.GradientEstimator`) available as
  `name`; a name registered twice is an error."""
  if name in _REGISTRY:
    raise ValueError("gradient estimator %r is already registered" % name)
  _REGISTRY[name] = estimator_class


def names():
  """The registered estimators' names."""
  return tuple(_REGISTRY)


def make(name, context):
  """Builds estimator `name` from a `base.Context`.

  Raises:
    ValueError: an unknown name (the message lists the known ones).
  """
  if name not in _REGISTRY:
    raise ValueError("unknown gradient estimator %r; expected one of %s" %
                     (name, ", ".join(_REGISTRY)))
  return _REGISTRY[name](context)


Context = base.Context
register("truncated_backprop", truncated_backprop.TruncatedBackprop)
