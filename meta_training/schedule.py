"""Unroll schedules: how long the meta-iterations' unrolls are, and more.

A schedule says, for one problem draw, the unroll lengths of the next
meta-iteration (`unroll_lengths`), the unroll lengths of an evaluation
trajectory (`evaluation_lengths`), what follows an evaluation
(`after_evaluation`: log it, save or restore checkpoints, stop?) and what
follows a meta-iteration (`after_meta_iteration`: keep the best, save).
The loop hands both hooks its `loop.MetaTrainer` (as `draw`), with the
checkpoint and evaluation actions they may take.

  FixedSchedule       num_steps // unroll_length unrolls of unroll_length.
  RandomSchedule      the original's random counts and lengths.
  CurriculumSchedule  the curriculum of Chen et al. 2020: stages of growing
                      horizon, stage checkpoints, restore on advance, stop.
  HorizonSchedule     horizon sampling: every task's trajectories have
                      log-uniform horizons and outlive meta-iterations;
                      the tasks of a batch start staggered.
"""

import numpy as np

from meta_training import curriculum


def sample_numiter(scale, min_steps=50, rng=None):
  """round(Exponential(scale)) + min_steps, clipped to [0, 3 min_steps]."""
  rng = np.random if rng is None else rng
  steps = int(np.round(rng.exponential(scale=scale))) + min_steps
  return int(np.clip(steps, 0, 3 * min_steps))


def sigmoid_weights(n, slope=0.1, offset=5):
  """Objective weights rising like a sigmoid over n steps, summing to 1."""
  x = np.arange(n)
  weights = 1. / (1. + np.exp(-slope * (x - offset)))
  return weights / np.sum(weights)


def regularizer_switch(unroll, num_unrolls, regularize_time, reg_scale):
  """Whether the regulariser is on for `unroll` of `num_unrolls`.

  With t = int(num_unrolls * reg_scale + 1): "posterior" -> unroll > t,
  "prior" -> unroll < t, "none" -> never, anything else -> always.
  """
  threshold = int(num_unrolls * reg_scale + 1)
  if regularize_time == "posterior":
    return unroll > threshold
  if regularize_time == "prior":
    return unroll < threshold
  if regularize_time == "none":
    return False
  return True


def make(schedule, evaluation, saves_last):
  """The schedule object of one problem draw.

  Args:
    schedule: a `config.Schedule`.
    evaluation: a `config.Evaluation`.
    saves_last: whether the periodic schedules also save after the draw's
      last meta-iteration (the chief does).
  """
  if schedule.curriculum:
    steps = schedule.curriculum_steps
    if schedule.curriculum_stages:
      # Stage s is evaluated on the horizon of stage s + 1.
      steps = steps[:schedule.curriculum_stages + 1]
    return CurriculumSchedule(schedule.unroll_length, steps,
                              schedule.curriculum_min_evaluations)
  num_eval_unrolls = evaluation.num_steps // schedule.unroll_length
  saving = (evaluation.save_period, schedule.num_meta_iterations, saves_last)
  if schedule.horizon_sampling:
    return HorizonSchedule(schedule.unroll_length, schedule.num_steps,
                           schedule.min_horizon, schedule.max_horizon,
                           schedule.stagger_tasks, num_eval_unrolls, *saving)
  if schedule.fixed:
    return FixedSchedule(schedule.unroll_length, schedule.num_steps,
                         num_eval_unrolls, *saving)
  return RandomSchedule(schedule, num_eval_unrolls, *saving)


class _PeriodicSchedule(object):
  """Evaluates at a fixed horizon; keeps the best and saves periodically."""

  note = ""
  # Whether tasks run trajectories of their own (`HorizonSchedule`) instead
  # of one trajectory per meta-iteration.
  samples_horizons = False

  def __init__(self, unroll_length, num_eval_unrolls, save_period,
               num_meta_iterations, saves_last):
    self._eval_lengths = [unroll_length] * num_eval_unrolls
    self._save_period = save_period
    self._num_meta_iterations = num_meta_iterations
    self._saves_last = saves_last

  def evaluation_lengths(self):
    return self._eval_lengths

  def after_evaluation(self, cost, index, draw):
    """Logs the evaluation; returns whether to stop (never)."""
    draw.log("evaluation %d, cost=%.6g" % (index, cost))
    return False

  def after_meta_iteration(self, local_k, k, cost, draw):
    """A better evaluation becomes model.ckpt-0; periodic model.ckpt-<k+1>."""
    if cost is not None and cost < draw.best:
      draw.keep_best(cost)
    if (local_k + 1) % self._save_period == 0 or (
        self._saves_last and local_k + 1 == self._num_meta_iterations):
      draw.save(k + 1)


class FixedSchedule(_PeriodicSchedule):
  """num_steps // unroll_length unrolls of unroll_length steps."""

  def __init__(self, unroll_length, num_steps, num_eval_unrolls, save_period,
               num_meta_iterations, saves_last):
    super().__init__(unroll_length, num_eval_unrolls, save_period,
                     num_meta_iterations, saves_last)
    self._lengths = [unroll_length] * (num_steps // unroll_length)

  def unroll_lengths(self):
    return list(self._lengths)


class HorizonSchedule(FixedSchedule):
  """Horizon sampling: trajectories of log-uniform horizons, staggered.

  A meta-iteration is num_steps // unroll_length partial unrolls of every
  task of the batch (`unroll_lengths`), but a task's trajectory is not tied
  to it: each task runs trajectories of its own horizon, drawn by
  `trajectory_lengths`, unroll after unroll across meta-iterations, and
  starts the next one (new initial parameters and data) when one ends.
  With `stagger`, task k of K cuts the first floor(k n / K) of the n unrolls
  of its first trajectory (it starts them at the trajectory's start, so no
  step is spent getting there): the tasks' trajectories then end, and new
  ones start, at staggered meta-updates, and one meta-update sees the
  tasks at different positions in their trajectories, early and late
  training alike. The positions stay spread out because the horizons
  differ.
  """

  samples_horizons = True

  def __init__(self, unroll_length, num_steps, min_horizon, max_horizon,
               stagger, num_eval_unrolls, save_period, num_meta_iterations,
               saves_last):
    super().__init__(unroll_length, num_steps, num_eval_unrolls, save_period,
                     num_meta_iterations, saves_last)
    if not 0 < min_horizon <= max_horizon:
      raise ValueError("horizon sampling needs 0 < min_horizon <= "
                       "max_horizon, got %s and %s" % (min_horizon,
                                                       max_horizon))
    self._unroll_length = unroll_length
    self._bounds = (float(min_horizon), float(max_horizon))
    self._stagger = stagger

  def trajectory_lengths(self, rng, task, num_tasks, first):
    """The unroll lengths of a new trajectory of `task` (of `num_tasks`).

    Its horizon H is exp(U(ln min_horizon, ln max_horizon)) steps, made
    n = max(1, round(H / unroll_length)) unrolls; a task's `first`
    trajectory is cut by the stagger.

    Args:
      rng: `np.random.RandomState` (one uniform draw per trajectory).
      task: the task's index in the batch.
      num_tasks: tasks in the batch.
      first: the task's first trajectory of the problem draw.
    """
    low, high = np.log(self._bounds[0]), np.log(self._bounds[1])
    horizon = np.exp(rng.uniform(low, high))
    num_unrolls = max(1, int(np.round(horizon / self._unroll_length)))
    if first and self._stagger:
      num_unrolls -= task * num_unrolls // num_tasks
    return [self._unroll_length] * num_unrolls


class RandomSchedule(_PeriodicSchedule):
  """Random unroll counts and lengths (`sample_numiter`).

  The draws come from NumPy's global generator, as the original's did, so
  --seed does not fix them.
  """

  def __init__(self, schedule, num_eval_unrolls, save_period,
               num_meta_iterations, saves_last):
    super().__init__(schedule.unroll_length, num_eval_unrolls, save_period,
                     num_meta_iterations, saves_last)
    self._schedule = schedule

  def unroll_lengths(self):
    s = self._schedule
    num_unrolls = sample_numiter(s.num_unrolls_scale, s.min_num_unrolls)
    return [sample_numiter(s.unroll_length_scale, s.min_unroll_length)
            for _ in range(num_unrolls)]


class CurriculumSchedule(object):
  """The stages of a `curriculum.CurriculumSchedule` driving the loop.

  model.ckpt-<stage> and model.ckpt-0 hold the stage's best; no periodic
  checkpoints are written.
  """

  samples_horizons = False

  def __init__(self, unroll_length, num_steps=curriculum.DEFAULT_NUM_STEPS,
               min_num_eval=curriculum.DEFAULT_MIN_NUM_EVAL):
    self.state = curriculum.CurriculumSchedule(unroll_length, num_steps,
                                               min_num_eval)
    self._unroll_length = unroll_length

  @property
  def note(self):
    return "  [curriculum stage %d: %d steps]" % (
        self.state.stage, self.state.num_steps[self.state.stage])

  def unroll_lengths(self):
    return [self._unroll_length] * self.state.train_unrolls

  def evaluation_lengths(self):
    """The next stage's horizon."""
    return [self._unroll_length] * self.state.eval_unrolls

  def after_evaluation(self, cost, index, draw):
    """Acts on the curriculum's verdict; returns whether to stop."""
    state = self.state
    stage = state.stage
    draw.log("evaluation %d, num_steps=%d, cost=%.6g" %
             (index, state.num_steps[stage], cost))
    action = state.record(cost)
    if action == curriculum.IMPROVED:
      # model.ckpt-0 holds the latest improvement, as in the original.
      draw.load_best(cost)
      draw.save(stage)
      names = sorted({draw.checkpoint_name(stage), draw.checkpoint_name(0)})
      if stage:
        draw.save(0)
      draw.log("curriculum %d improved: saved %s" % (stage,
                                                     " and ".join(names)))
    elif action == curriculum.ADVANCE:
      draw.restore_meta_parameters(stage)
      baseline = draw.evaluate(self.evaluation_lengths())
      state.set_baseline(baseline)
      draw.log("curriculum %d -> %d: restored %s; evaluation %d, "
               "num_steps=%d, cost=%.6g" %
               (stage, state.stage, draw.checkpoint_name(stage), index,
                state.num_steps[state.stage], baseline))
    elif action == curriculum.STOP:
      draw.log("no improve during curriculum %d --> stop" % stage)
      return True
    elif action == curriculum.FINISHED:
      draw.log("curriculum finished at stage %d" % stage)
      return True
    return False

  def after_meta_iteration(self, local_k, k, cost, draw):
    del local_k, k, cost  # The stage checkpoints are written on evaluation.
    draw.reload_best()
