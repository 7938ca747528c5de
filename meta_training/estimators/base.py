"""What a meta-gradient estimator is: the interface the loop runs.

An estimator builds, in the meta-graph, the ops of one meta-update from
unrolls of the problem and the meta-parameters (`__init__`, given a
`Context`), and runs one estimate and update per partial unroll (`run`).
The loop (meta_training/loop.py) only prepares feeds and reads what `run`
returns; which unrolls are built, at which meta-parameter values, and how
their objectives become a meta-update is the estimator's business.

How an estimate becomes a meta-update (meta-optimizer, schedule, clipping)
is shared by the estimators: `meta_update`.
"""

import collections

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
    skipped: the counter of meta-updates skipped for a non-finite estimate
      (a variable; None when estimates are never skipped).
    FORWARD_ONLY: (class attribute) the estimator never differentiates the
      main unroll, which is then built with the optimizer's forward step
      (`build_unroll(forward_only=True)`).
    IMITATION: (class attribute) the estimator has an imitation objective
      (runs with `imitating`); without one it is never built with
      `Context.imitation`.
  """

  FORWARD_ONLY = False
  IMITATION = False

  def __init__(self, context):
    self.unroll = context.unroll
    self.gradients = []
    self.skipped = None

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

