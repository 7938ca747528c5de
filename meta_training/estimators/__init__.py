"""Meta-gradient estimators behind one interface (`base.GradientEstimator`).

  truncated_backprop  the original: backpropagation through each partial
                      unroll, one meta-update per unroll.
  es                  antithetic evolution strategies: forward-only runs of
                      the partial unroll at perturbed meta-parameters.
  pes                 persistent evolution strategies: ES whose particles
                      carry their own states and accumulated perturbations
                      across a trajectory's partial unrolls (no truncation
                      bias).

`--gradient_estimator` (`config.MetaOptimizer.gradient_estimator`) picks one
by name; a new estimator is one module and one `register` call.
"""

from meta_training.estimators import base
from meta_training.estimators import evolution_strategies
from meta_training.estimators import persistent_es
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
    ValueError: an unknown name (the message lists the known ones), or
      imitation asked of an estimator without it.
  """
  estimator_class = _lookup(name)
  if context.imitation and not estimator_class.IMITATION:
    raise ValueError("the %s gradient estimator has no imitation objective; "
                     "imitation needs one that has (%s)" %
                     (name, ", ".join(n for n in _REGISTRY if imitates(n))))
  return estimator_class(context)


def imitates(name):
  """Whether estimator `name` has an imitation objective (see
  `base.GradientEstimator.IMITATION`).

  Raises:
    ValueError: an unknown name.
  """
  return _lookup(name).IMITATION


def forward_only(name):
  """Whether estimator `name` never differentiates the main unroll (see
  `base.GradientEstimator.FORWARD_ONLY`).

  Raises:
    ValueError: an unknown name.
  """
  return _lookup(name).FORWARD_ONLY


def _lookup(name):
  if name not in _REGISTRY:
    raise ValueError("unknown gradient estimator %r; expected one of %s" %
                     (name, ", ".join(_REGISTRY)))
  return _REGISTRY[name]


Context = base.Context
register("truncated_backprop", truncated_backprop.TruncatedBackprop)
register("es", evolution_strategies.EvolutionStrategies)
register("pes", persistent_es.PersistentEvolutionStrategies)
