"""What a meta-gradient estimator is: the interface the loop runs.

An estimator builds, in the meta-graph, the ops of one meta-update from
unrolls of the problem and the meta-parameters (`__init__`, given a
`Context`), and runs one estimate and update per partial unroll (`run`).
The loop (meta_training/loop.py) only prepares feeds and reads what `run`
returns; which unrolls are built, at which meta-parameter values, and how
their objectives become a meta-update is the estimator's business.

Helpers shared by the estimators: the meta-optimizer and the treatment of
raw meta-gradients (non-finite entries zeroed, then clipped by value).
"""

import collections

import tensorflow.compat.v1 as tf

from optimizer import utils

Context = collections.namedtuple("Context", [
    "unroll",       # unroll.UnrollOutput at the meta-parameter variables
    "unroll_fn",    # fn(meta_values=None, forward_only=False) -> UnrollOutput
    "meta_vars",    # the meta-parameter variables
    "global_step",  # counts meta-updates
    "settings",     # config.MetaOptimizer
    "imitation",    # also build the imitation objective's update
])
Context.__doc__ = """What an estimator is built from.

`unroll` is the unroll whose carried state the run continues (the loop's
feeds and the evaluation's start come from it); `unroll_fn` builds further
unrolls of the same problem, e.g. at perturbed meta-parameter values (a
dict variable name -> tensor), each with its own placeholders and carried
state."""


class GradientEstimator(object):
  """The base of meta-gradient estimators.

  Attributes:
    unroll: the context's main unroll.
    gradients: (meta-variable, raw meta-gradient, applied meta-gradient)
      triples for the histogram summaries (may be empty).
  """

  def __init__(self, context):
    self.unroll = context.unroll
    self.gradients = []

  def run(self, sess, feed_for, imitating, carry, fetches):
    """One estimate and meta-update on the current partial unroll.

    Args:
      sess: the session.
      feed_for: fn(UnrollOutput) -> feed dict of this partial unroll's data
        (starts, batches, resets, teacher steps) for any unroll the
        estimator built.
      imitating: an imitation unroll (teacher steps fed; the imitation
        objective is the one to minimise).
      carry: copy the main unroll's final state into its carried variables
        after the update (False on a meta-iteration's last unroll).
      fetches: dict name -> tensor of the main unroll to fetch in the same
        run (objectives, summaries); not fetched for imitation unrolls.

    Returns:
      dict: "meta_objective" (the value minimised, for imitation the
      imitation loss) and the `fetches` by name.
    """
    raise NotImplementedError


def meta_optimizer(settings):
  """The meta-optimizer of `settings` (a `config.MetaOptimizer`): TF1
  RMSProp, as the original (its mean-square slot starts at 1)."""
  return tf.train.RMSPropOptimizer(
      settings.learning_rate, decay=settings.rms_decay,
      epsilon=settings.rms_epsilon, use_locking=True)


def clip(gradients, settings):
  """Raw meta-gradients made finite (non-finite entries 0) and clipped to
  [-gradient_clip, gradient_clip]."""
  return [tf.clip_by_value(utils.make_finite(g, tf.zeros_like(g)),
                           -settings.gradient_clip, settings.gradient_clip)
          for g in (tf.convert_to_tensor(g) for g in gradients)]


def apply(optimizer, gradients, meta_vars, global_step):
  """The meta-update: `optimizer` applies `gradients` once every one of
  them is computed (reads of reference variables alias their buffers, see
  docs/fidelity.md E14)."""
  with tf.control_dependencies(gradients):
    return optimizer.apply_gradients(zip(gradients, meta_vars),
                                     global_step=global_step)
