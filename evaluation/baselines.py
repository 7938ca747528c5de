"""Hand-designed optimizers that learned optimizers are compared with.

SGD, Adam and Adagrad with the learning rates the original evaluation
program hard-coded (0.001, 0.0001, 0.00001; Adagrad with its initial
accumulator 0.1), plus RMSProp and Momentum, which this port adds with the
learning rates below. All are the tf.compat.v1 optimizers with TF1 defaults
otherwise.
"""

import collections

import tensorflow.compat.v1 as tf

Baseline = collections.namedtuple("Baseline", [
    "flag",           # name of the entry point's learning-rate flag
    "learning_rate",  # default learning rate
    "build",          # function (learning_rate) -> optimizer
])

BASELINES = collections.OrderedDict([
    ("SGD", Baseline("sgd_learning_rate", 1e-3,
                     tf.train.GradientDescentOptimizer)),
    ("Adam", Baseline("adam_learning_rate", 1e-4, tf.train.AdamOptimizer)),
    ("Adagrad", Baseline(
        "adagrad_learning_rate", 1e-5,
        lambda lr: tf.train.AdagradOptimizer(lr,
                                             initial_accumulator_value=0.1))),
    ("RMSProp", Baseline("rmsprop_learning_rate", 1e-4,
                         tf.train.RMSPropOptimizer)),
    ("Momentum", Baseline(
        "momentum_learning_rate", 1e-3,
        lambda lr: tf.train.MomentumOptimizer(lr, momentum=0.9))),
])

NAMES = tuple(BASELINES)


def make_baseline(name, learning_rate=None):
  """A function of no arguments building baseline `name` (for fresh graphs).

  Args:
    name: one of NAMES.
    learning_rate: default: the baseline's default learning rate.

  Raises:
    ValueError: unknown name or non-positive learning rate.
  """
  if name not in BASELINES:
    raise ValueError("unknown baseline optimizer %r; expected one of %s" %
                     (name, ", ".join(NAMES)))
  baseline = BASELINES[name]
  rate = baseline.learning_rate if learning_rate is None else learning_rate
  if not rate > 0:
    raise ValueError("learning rate of %s must be positive, got %r" %
                     (name, rate))
  return lambda: baseline.build(rate)
