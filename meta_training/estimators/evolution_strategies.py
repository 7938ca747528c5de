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
    unrolls: the forward-only unrolls at theta + sigma epsilon and
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
    self.unrolls = [
        context.unroll_fn({v.op.name: v + sign * self._sigma * e
                           for v, e in zip(meta_vars, self.epsilon)},
                          forward_only=True)
        for sign in (1., -1.)]
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
        tf.assign(var, value) for var, value in
        zip(self.unroll.carried_variables, self.unroll.carried_values)])

  def start(self, sess, feed_for):
    """The main unroll's start for this partial unroll (its `start_values`,
    drawing a reset's random initial state once)."""
    values = sess.run(self.unroll.start_values, feed_for(self.unroll))
    # A read of a carried variable may alias its buffer, which the carry
    # later overwrites.
    return [np.array(v, copy=True) for v in values]

  def estimate(self, sess, feed_for, start, epsilons=None):
    """The ES estimate of the partial unroll from `start`.

    Args:
      sess: the session.
      feed_for: as in `run`.
      start: the start of every unroll (`start`'s result).
      epsilons: optional fixed directions: a list, one per pair, of lists of
        arrays shaped like the trained meta-parameters (default: es_pairs
        fresh draws).

    Returns:
      (estimate, objectives): the estimate, one float32 array per trained
      meta-parameter, and the pairs' meta-objectives [N, 2]
      (L(theta + sigma eps_i), L(theta - sigma eps_i)).
    """
    plus, minus = self.unrolls
    feed = self._feed_from(feed_for, plus, start)
    feed.update(self._feed_from(feed_for, minus, start))
    num_pairs = self._num_pairs if epsilons is None else len(epsilons)
    total = [np.zeros(e.get_shape().as_list(), np.float64)
             for e in self.epsilon]
    objectives = []
    for i in range(num_pairs):
      if epsilons is not None:
        feed.update(zip(self.epsilon, epsilons[i]))
      up, down, directions = sess.run(
          [plus.meta_objective, minus.meta_objective, self.epsilon], feed)
      objectives.append((up, down))
      for t, e in zip(total, directions):
        t += (float(up) - float(down)) * e
    scale = 1. / (2. * self._sigma * num_pairs)
    return ([(t * scale).astype(np.float32) for t in total],
            np.array(objectives))

  def run(self, sess, feed_for, imitating, carry, fetches):
    if imitating:
      raise ValueError("the es gradient estimator cannot run an imitation "
                       "unroll")
    start = self.start(sess, feed_for)
    estimate, _ = self.estimate(sess, feed_for, start)
    given = dict(zip(self.estimate_input, estimate))
    feed = self._feed_from(feed_for, self.unroll, start)
    # The summaries may show the estimate.
    feed.update(given)
    names = sorted(fetches)
    ops = [self.unroll.meta_objective, [fetches[n] for n in names]]
    if carry:
      ops.append(self._carry_op)
    values = sess.run(ops, feed)
    # Its own run: the main unroll above read theta before it changes.
    sess.run(self.train_op, given)
    result = dict(zip(names, values[1]))
    result["meta_objective"] = values[0]
    return result

  @staticmethod
  def _feed_from(feed_for, out, start):
    feed = feed_for(out)
    feed.update(zip(out.start_values, start))
    return feed
