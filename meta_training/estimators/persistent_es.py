"""Persistent evolution strategies (PES, Vicol et al. 2021).

ES on a partial unroll (`evolution_strategies`) is truncated: its pairs
start where the main unroll starts, so it sees theta's effect through this
truncation's steps only, not through the state that earlier truncations
carried in (the truncation bias truncated backprop has too). PES keeps
that history. Over one trajectory (the partial unrolls k = 1, 2, ... from a
first unroll), each of N = `es_pairs` antithetic particle pairs keeps its
own two states, s_i+ and s_i- (optimizee parameters and optimizer state),
and its accumulated perturbation xi_i. At truncation k it draws
eps_i^(k) ~ N(0, I) over the trained meta-parameters theta, runs particle +
at theta + sigma eps_i^(k) from s_i+ and particle - at
theta - sigma eps_i^(k) from s_i- (sigma = `es_sigma`), both on this
truncation's data, keeps their final states as the next s_i+ and s_i-, and
takes

  xi_i^(k) = xi_i^(k-1) + eps_i^(k)          (xi_i^(0) = 0)
  g^(k) = sum_i (L_i+^(k) - L_i-^(k)) xi_i^(k) / (2 sigma N),

L_i+-^(k) the two particles' meta-objectives of truncation k. Particle +'s
loss depends on every perturbation of its history, theta + sigma eps^(j)
at truncation j <= k, so by the Gaussian score identity
E[L^(k) sum_j eps^(j)] / sigma is the gradient, with respect to a theta
shared by all k truncations, of the smoothed loss
E L^(k)(theta + sigma eps^(1), ..., theta + sigma eps^(k)). g^(k) is an
unbiased estimate of it (particle - is the mirror image, which cancels the
mean loss without changing the expectation), and the sum over a
trajectory's truncations estimates the gradient of its whole smoothed
meta-objective. Truncated ES weights by eps_i^(k) alone: it sees theta
only through truncation k's own steps. In Vicol et al.'s notation,
perturbations of standard deviation sigma and
g = sum_i xi_i (L_i+ - L_i-) / (2 N sigma^2), this is the same estimate
(their eps and xi are sigma times ours).

As in the paper's online form, theta changes between truncations (one
meta-update each), and the particles go on from the states they reached at
the earlier theta; with small meta-updates that bias is small.

Everything else is ES's, reused: the two forward-only unrolls at
theta +/- sigma epsilon with their in-graph draw, one `session.run` per
pair, the sum (`evolution_strategies.AntitheticSum`), the meta-update of
the estimate (L2 gradient, clipping, skips: `meta_update`), and the main
unroll at theta, which runs from its own carried state, gives the
meta-objective the loop reports and carries the unperturbed trajectory on.

A trajectory starts afresh when the loop feeds `first_unroll` (the first
partial unroll of every meta-iteration, from new initial parameters; a new
problem draw also builds a new graph and estimator) or `reset_state`, and
after a run that does not carry the main state on (the trajectory's last
unroll): the particles then restart at the main unroll's start for that
truncation (the same parameters, the same optimizer state, on a reset the
same random initial learning rates) and xi = 0, so a trajectory's first
PES estimate is the ES estimate of the same directions. A particle whose
state becomes non-finite keeps it until its trajectory ends: without a
bounded meta-loss its pair makes every entry of the estimate non-finite,
so the meta-update zeroes them all for the rest of the trajectory; with
one (`loss_ceiling`) its losses count as the ceiling.

Cost: a meta-update is N + 3 `session.run` calls, 2N + 1 forward partial
unrolls, as for ES. On top, the particles' states live in host (numpy)
memory: 2N copies of the carried state (the optimizee's parameters twice,
as parameters and attended point, plus the optimizer's per-parameter
state), each fed into its pair's run and fetched back once per truncation,
and xi, N float64 copies of the trained meta-parameters. Measured with the
default HierarchicalRNN on two loaded cores: on a 3-dimensional quadratic
(113 floats of carried state), 20-step unrolls and N = 8, a meta-update
took 0.31-0.34 s against ES's 0.28-0.35 s (truncated backprop: 0.04 s); on
a 784-100-10 MLP (1.9 million floats, 7.6 MB, per state: 122 MB for the 16
particles) fetching a pair's two final states added about 0.02 s to its
1.1 s run of 20 steps. On an accelerator it is a host round trip of 2N
states per truncation.

With a batch of K tasks every task has its own N particle pairs and
accumulators, restarted when its own trajectory starts (the tasks of a
horizon-sampling batch start theirs at different meta-updates); the pair
i of every task shares the truncation's direction eps_i, and the estimate
is the sum above over pairs and tasks divided by 2 sigma N K.

Resume: nothing PES-specific is saved. A trajectory lives within one
meta-iteration and checkpoints fall between meta-iterations, so a resumed
run starts its next meta-iteration with a first unroll: particles at its
start, xi = 0, as the uninterrupted run would have. (An estimator made
in the middle of a trajectory starts its particles at the main unroll's
current start with xi = 0.) Imitation has no PES form (`IMITATION`
False), as for ES.
"""

import numpy as np

from meta_training.estimators import evolution_strategies


class PersistentEvolutionStrategies(evolution_strategies.EvolutionStrategies):
  """PES over the context's trained meta-parameters.

  Attributes (besides `EvolutionStrategies`'):
    particles: per task, per pair, the states its + and - unrolls start the
      next truncation from (lists in the `start_values` layout); a task's
      entry is None when its next truncation starts a trajectory.
    accumulated: per task, per pair, xi_i (float64 arrays shaped like the
      trained meta-parameters), or None with `particles`.
  """

  def __init__(self, context):
    super().__init__(context)
    self.particles = [None] * len(self.tasks)
    self.accumulated = [None] * len(self.tasks)

  def estimate(self, sess, feed_for, starts, epsilons=None):
    """The PES estimate of this truncation; moves the particles on.

    Args:
      sess: the session.
      feed_for: as in `run`.
      starts: per task, the main unroll's start (`start`'s result), where
        the task's particles restart when this truncation starts its
        trajectory.
      epsilons: optional fixed directions of this truncation: a list, one
        per pair, of lists of arrays shaped like the trained
        meta-parameters (default: es_pairs fresh draws).

    Returns:
      (estimate, objectives): the estimate, one float32 array per trained
      meta-parameter, and the particles' meta-objectives [N K, 2]
      (L_i+, L_i-) of pair i on task k in row i K + k.

    Raises:
      ValueError: `epsilons` for another number of pairs than a running
        trajectory's.
    """
    num_pairs = self._num_pairs if epsilons is None else len(epsilons)
    for task, start in enumerate(starts):
      if (self.particles[task] is None or
          self._starts_trajectory(feed_for, task)):
        self.restart(task, start, num_pairs)
      elif num_pairs != len(self.particles[task]):
        raise ValueError("%d directions for a trajectory of %d particle "
                         "pairs" % (num_pairs, len(self.particles[task])))
    feed = self._pair_feed(feed_for)
    total = self._new_sum()
    for i in range(num_pairs):
      ups, downs, directions, ends = self._run_pair(
          sess, self._starting(feed, [p[i] for p in self.particles]),
          None if epsilons is None else epsilons[i], ends=True)
      for task, (up, down) in enumerate(zip(ups, downs)):
        self.particles[task][i] = tuple(ends[task])
        accumulated = self.accumulated[task][i]
        for xi, e in zip(accumulated, directions):
          xi += e
        total.add(up, down, accumulated)
    return total.estimate(), total.objectives()

  def restart(self, task, start, num_pairs):
    """Starts a trajectory of `task`: every particle at `start`, xi = 0."""
    self.particles[task] = [(start, start)] * num_pairs
    self.accumulated[task] = [
        [np.zeros(e.get_shape().as_list(), np.float64) for e in self.epsilon]
        for _ in range(num_pairs)]

  def run(self, sess, feed_for, imitating, carry, fetches):
    result = super().run(sess, feed_for, imitating, carry, fetches)
    if not carry:
      # The main trajectories end here; the next unroll starts others.
      self.particles = [None] * len(self.tasks)
      self.accumulated = [None] * len(self.tasks)
    return result

  def _starts_trajectory(self, feed_for, task):
    out = self.tasks[task]
    feed = feed_for(out, task)
    return bool(feed.get(out.first_unroll, False) or
                feed.get(out.reset_state, False))
