"""What a meta-gradient estimator is: the interface the loop runs.

An estimator builds, in the meta-graph, the ops of one meta-update from
unrolls of the problem and the meta-parameters (`__init__`, given a
`Context`), and runs one estimate and update per partial unroll (`run`).
The loop (meta_training/loop.py) only prepares feeds and reads what `run`
returns; which unrolls are built, at which meta-parameter values, and how
their objectives become a meta-update is the estimator's business.

How an estimate becomes a meta-update (meta-optimizer, schedule, clipping)
is shared by the estimators: `meta_update`.

A meta-update may see a batch of K tasks (`--task_batch_size`): K main
unrolls of the problem in the one graph, each its own trajectory (initial
parameters, batches, position in the trajectory), run in the same
`session.run` calls (on two cores a batch costs about K times one task:
one task already keeps both busy; bench/RESULTS.md). Each estimator estimates
the gradient of the tasks' mean meta-objective.
"""

import collections

import numpy as np
import tensorflow.compat.v1 as tf

Context = collections.namedtuple("Context", [
    "unroll",       # unroll.UnrollOutput at the meta-parameter variables
    "unroll_fn",    # fn(meta_values=None, forward_only=False) -> UnrollOutput
    "meta_vars",    # the meta-parameter variables
    "global_step",  # counts meta-updates
    "settings",     # config.MetaOptimizer
    "imitation",    # also build the imitation objective's update
    "tasks",        # the unrolls of the batch's tasks; tasks[0] is `unroll`
])
Context.__doc__ = """What an estimator is built from.

`tasks` are the main unrolls of the K task instances of a meta-update (one
per task, each with its own placeholders and carried state, all at the
meta-parameter variables); `unroll`, the first, is the one the evaluation
starts from and the summaries show. `unroll_fn` builds further unrolls of
the same problem, e.g. at perturbed meta-parameter values (a dict variable
name -> tensor), each with its own placeholders and carried state."""


def task_mean(values):
  """The mean of per-task tensors (the one tensor itself for one task, so
  that a one-task graph is the original's)."""
  values = list(values)
  if len(values) == 1:
    return values[0]
  return tf.add_n(values) / float(len(values))


def task_feed(feed_for, unrolls):
  """One feed of per-task unrolls: `unrolls[k]` fed as task k's."""
  feed = {}
  for task, out in enumerate(unrolls):
    feed.update(feed_for(out, task))
  return feed


def mean_value(values):
  """The mean of per-task fetched values (the value itself for one task)."""
  values = list(values)
  if len(values) == 1:
    return values[0]
  return float(np.mean(values))


class GradientEstimator(object):
  """The base of meta-gradient estimators.

  Attributes:
    unroll: the context's main unroll (the first task's).
    tasks: the main unrolls of the batch's tasks.
    meta_objective: their mean meta-objective (a tensor).
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
    self.tasks = list(context.tasks)
    self.meta_objective = task_mean(t.meta_objective for t in self.tasks)
    self.gradients = []
    self.skipped = None

  def run(self, sess, feed_for, imitating, carry, fetches):
    """One estimate and meta-update on the current partial unroll.

    Args:
      sess: the session.
      feed_for: fn(UnrollOutput, task) -> feed dict of this partial
        unroll's data (starts, batches, resets, teacher steps) of task
        `task` (an index into `tasks`), for any unroll the estimator built
        for that task.
      imitating: an imitation unroll (teacher steps fed; the imitation
        objective is the one to minimise).
      carry: copy the main unrolls' final states into their carried
        variables after the update (False on a meta-iteration's last
        unroll).
      fetches: dict name -> tensor of the main unrolls to fetch in the
        same run (objectives, summaries); not fetched for imitation
        unrolls.

    Returns:
      dict: "meta_objective" (the value minimised, the mean over the tasks;
      for imitation the imitation loss) and the `fetches` by name.
    """
    raise NotImplementedError

