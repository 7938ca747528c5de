"""Antithetic evolution strategies: a forward-only meta-gradient estimate.

Per meta-update, N = `es_pairs` directions epsilon_i ~ N(0, I) over the
trained meta-parameters theta; the partial unroll runs at
theta + sigma epsilon_i and at theta - sigma epsilon_i (sigma = `es_sigma`)
and the estimate is

  g = sum_i (L(theta + sigma eps_i) - L(theta - sigma eps_i)) eps_i
      / (2 sigma N),

an unbiased estimate of the gradient of the Gaussian-smoothed
meta-objective E_eps L(theta + sigma eps) of this partial unroll. It is
applied once through `meta_update` (meta-optimizer, schedule, clipping; a
non-finite estimate is zeroed entry by entry, or skipped and counted with a
bounded meta-loss), with the exact gradient 2 l2_reg theta of the L2
penalty added. No unroll is differentiated, so the memory does not grow
with the unroll length.

Every unroll of one meta-update starts from one state: the main unroll's
start for this partial unroll (on a first unroll the fed initial
parameters and, on a state reset, the random initial state it draws; later
the state it carried), fetched in one run and fed to every unroll as its
`start_values`. The pairs see the same data (the loop's `feed_for`). The
main unroll, at theta itself, then runs from that start: it gives the
meta-objective the loop reports and carries the trajectory on to the next
partial unroll, as with truncated backprop. All of them take the
optimizer's forward step (`FORWARD_ONLY`), so at sigma = 0 the three
objectives are the same number.

How the pairs are built: one unroll at theta + sigma epsilon and one at
theta - sigma epsilon, both reading one in-graph draw epsilon (a seeded
`tf.random.normal` per meta-parameter, so a seeded run repeats). A
`session.run` of the two draws epsilon once and gives one pair; the N pairs
are N runs, accumulated in numpy, and the estimate is applied in one more
run. A meta-update is N + 3 runs: the start, the pairs, the main unroll,
the update. The alternative, 2N unrolls in the graph evaluated in one run,
multiplies the graph, its build time and the XLA compilation of the forward
step by N for no clear gain in run time. Measured with the default
HierarchicalRNN on a 3-dimensional quadratic, 20-step unrolls, N = 8, on
two loaded cores: the meta-graph builds in about 3 s with two perturbed
unrolls (truncated backprop's: 2.7 s) against 13-14 s with 16, its first
meta-update (the XLA compilation) takes 4 s against 23 s, and later
meta-updates take 0.16-0.19 s against 0.10-0.25 s for the 16-unroll run
alone (truncated backprop: 0.02 s, one forward and backward pass against
2N + 1 forward passes).

The pair run (`_run_pair`, which may start the two unrolls from
different states and return their final ones) and the antithetic sum
(`AntitheticSum`, any weight per pair) are shared with
`persistent_es`, ES whose pairs carry their states across partial unrolls.

With a batch of K tasks, every pair runs at theta +/- sigma eps_i on all of
them (2K unrolls in its one run, each task from its own start and on its
own data): the estimate is the sum above over pairs and tasks divided by
2 sigma N K, the ES estimate of the tasks' mean meta-objective.

Imitation has no ES form here (`IMITATION` False): `estimators.make`
refuses it, and metarun.py rejects --if_mt with --gradient_estimator=es.
Nothing ES-specific is saved: epsilon is drawn afresh for every pair, so a
resumed run simply draws on.
"""

import numpy as np
import tensorflow.compat.v1 as tf

from meta_training.estimators import base
from meta_training.estimators import meta_update


class EvolutionStrategies(base.GradientEstimator):
  """Antithetic ES over the context's trained meta-parameters.

  Attributes:
    epsilon: per trained meta-parameter, the direction of a pair (random
      tensors drawn once per run; fed to fix them).
    pairs: per task, its forward-only unrolls at theta + sigma epsilon and
      theta - sigma epsilon.
    estimate_input: per trained meta-parameter, the placeholder of the
      estimate that `train_op` applies.
    train_op: the meta-update from the fed estimate.
  """

  FORWARD_ONLY = True

  def __init__(self, context):
    super().__init__(context)
    settings = context.settings
    self._num_pairs = settings.es_pairs
    self._sigma = settings.es_sigma
    meta_vars = list(context.meta_vars)
    with tf.name_scope("evolution_strategies"):
      self.epsilon = [tf.random.normal(v.get_shape(), dtype=v.dtype.base_dtype,
                                       name="epsilon") for v in meta_vars]
    self.pairs = [tuple(
        context.unroll_fn({v.op.name: v + sign * self._sigma * e
                           for v, e in zip(meta_vars, self.epsilon)},
                          forward_only=True)
        for sign in (1., -1.)) for _ in self.tasks]
    self.estimate_input = [
        tf.placeholder(v.dtype.base_dtype, v.get_shape(), name="es_estimate")
        for v in meta_vars]
    raw = self.estimate_input
    if settings.l2_reg:
      raw = [g + 2. * settings.l2_reg * v for g, v in zip(raw, meta_vars)]
    clipped = meta_update.clip(raw, settings)
    self.train_op = meta_update.apply(
        meta_update.optimizer(settings, context.global_step), raw, clipped,
        meta_vars, context.global_step, settings)
    if settings.loss_ceiling:
      self.skipped = meta_update.skipped_counter()
    self.gradients = list(zip(meta_vars, raw, clipped))
    # The main unroll's start is fed, so these copies read nothing they
    # write.
    self._carry_op = tf.group(*[
        tf.assign(var, value) for out in self.tasks
        for var, value in zip(out.carried_variables, out.carried_values)])

  def start(self, sess, feed_for):
    """The main unrolls' starts for this partial unroll (their
    `start_values`, drawing a reset's random initial state once), one list
    per task."""
    values = sess.run([out.start_values for out in self.tasks],
                      base.task_feed(feed_for, self.tasks))
    # A read of a carried variable may alias its buffer, which the carry
    # later overwrites.
    return [[np.array(v, copy=True) for v in task] for task in values]

  def estimate(self, sess, feed_for, starts, epsilons=None):
    """The ES estimate of the partial unroll from `starts`.

    Args:
      sess: the session.
      feed_for: as in `run`.
      starts: per task, the start of its unrolls (`start`'s result).
      epsilons: optional fixed directions: a list, one per pair, of lists of
        arrays shaped like the trained meta-parameters (default: es_pairs
        fresh draws).

    Returns:
      (estimate, objectives): the estimate, one float32 array per trained
      meta-parameter, and the meta-objectives [N K, 2]
      (L(theta + sigma eps_i), L(theta - sigma eps_i)) of pair i on task k
      in row i K + k.
    """
    feed = self._starting(self._pair_feed(feed_for),
                          [(start, start) for start in starts])
    num_pairs = self._num_pairs if epsilons is None else len(epsilons)
    total = self._new_sum()
    for i in range(num_pairs):
      ups, downs, directions, _ = self._run_pair(
          sess, feed, None if epsilons is None else epsilons[i])
      for up, down in zip(ups, downs):
        total.add(up, down, directions)
    return total.estimate(), total.objectives()

  def _run_pair(self, sess, feed, epsilon=None, ends=False):
    """One run of a pair's unrolls on every task, at theta +/- sigma eps.

    Args:
      sess: the session.
      feed: the pair's feed, starts included (`_starting`).
      epsilon: optional fixed direction (arrays shaped like the trained
        meta-parameters; default: a fresh draw).
      ends: also fetch the unrolls' final states.

    Returns:
      (ups, downs, eps, ends): per task L(theta + sigma eps) and
      L(theta - sigma eps); ends is, per task, (carried_values of the +
      unroll, those of the - unroll), or None.
    """
    if epsilon is not None:
      feed = dict(feed)
      feed.update(zip(self.epsilon, epsilon))
    ops = [[plus.meta_objective for plus, _ in self.pairs],
           [minus.meta_objective for _, minus in self.pairs], self.epsilon]
    if ends:
      ops.append([(plus.carried_values, minus.carried_values)
                  for plus, minus in self.pairs])
    values = sess.run(ops, feed)
    return tuple(values[:3]) + (values[3] if ends else None,)

  def run(self, sess, feed_for, imitating, carry, fetches):
    if imitating:
      raise ValueError("%s cannot run an imitation unroll" %
                       type(self).__name__)
    starts = self.start(sess, feed_for)
    estimate, _ = self.estimate(sess, feed_for, starts)
    given = dict(zip(self.estimate_input, estimate))
    feed = base.task_feed(feed_for, self.tasks)
    for out, start in zip(self.tasks, starts):
      feed.update(zip(out.start_values, start))
    # The summaries may show the estimate.
    feed.update(given)
    names = sorted(fetches)
    ops = [self.meta_objective, [fetches[n] for n in names]]
    if carry:
      ops.append(self._carry_op)
    values = sess.run(ops, feed)
    # Its own run: the main unrolls above read theta before it changes.
    sess.run(self.train_op, given)
    result = dict(zip(names, values[1]))
    result["meta_objective"] = values[0]
    return result

  def _new_sum(self):
    return AntitheticSum([e.get_shape().as_list() for e in self.epsilon],
                         self._sigma)

  def _pair_feed(self, feed_for):
    """The pairs' unrolls' feed of this partial unroll, starts aside."""
    feed = {}
    for task, (plus, minus) in enumerate(self.pairs):
      feed.update(feed_for(plus, task))
      feed.update(feed_for(minus, task))
    return feed

  def _starting(self, feed, task_starts):
    """`feed` with the pairs' unrolls started from `task_starts`: per task,
    (the start of the one at theta + sigma epsilon, the other's)."""
    feed = dict(feed)
    for (plus, minus), (up_start, down_start) in zip(self.pairs,
                                                     task_starts):
      feed.update(zip(plus.start_values, up_start))
      feed.update(zip(minus.start_values, down_start))
    return feed


class AntitheticSum(object):
  """sum_i (L_i+ - L_i-) w_i / (2 sigma N), accumulated pair by pair.

  w_i is the pair's weight: its direction eps_i for ES, its accumulated
  perturbation xi_i for PES. The sum is kept in float64 (N can be large).
  """

  def __init__(self, shapes, sigma):
    """`shapes`: the weights' shapes (the trained meta-parameters');
    `sigma`: the perturbations' standard deviation."""
    self._total = [np.zeros(shape, np.float64) for shape in shapes]
    self._sigma = sigma
    self._objectives = []

  def add(self, up, down, weights):
    """Adds the pair with objectives `up` (at theta + sigma eps) and `down`
    and weights `weights` (arrays of `shapes`)."""
    self._objectives.append((up, down))
    for total, weight in zip(self._total, weights):
      total += (float(up) - float(down)) * weight

  def estimate(self):
    """The estimate: one float32 array per weight."""
    scale = 1. / (2. * self._sigma * len(self._objectives))
    return [(t * scale).astype(np.float32) for t in self._total]

  def objectives(self):
    """The pairs' objectives [N, 2] (up, down)."""
    return np.array(self._objectives)

