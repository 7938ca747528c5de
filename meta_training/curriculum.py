"""Curriculum learning of optimizee horizons (Chen et al. 2020), as a schedule.

Stage s trains on `num_unrolls_train[s]` unrolls of `unroll_length` steps and
is evaluated on the next stage's horizon. After each evaluation the schedule
says what the training loop must do:

  IMPROVED  the cost beat the stage's best: save model.ckpt-<stage> and
            model.ckpt-0;
  ADVANCE   at least `min_num_eval` evaluations in the stage, one of them an
            improvement, and this one not: restore the stage's best
            checkpoint, move to the next stage and re-measure the baseline
            at its evaluation horizon (`set_baseline`);
  STOP      at least `min_num_eval` evaluations and none improved: stop;
  FINISHED  advancing past the last stage that has an evaluation horizon
            (the original raised IndexError here): stop cleanly;
  CONTINUE  otherwise.
"""

import math

DEFAULT_NUM_STEPS = (100, 200, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000,
                     4500, 5000)
DEFAULT_MIN_NUM_EVAL = 3

IMPROVED = "improved"
ADVANCE = "advance"
STOP = "stop"
FINISHED = "finished"
CONTINUE = "continue"


class CurriculumSchedule(object):
  """The curriculum's state: stage, evaluations in the stage, best cost."""

  def __init__(self, unroll_length, num_steps=DEFAULT_NUM_STEPS,
               min_num_eval=DEFAULT_MIN_NUM_EVAL):
    """Creates the schedule at stage 0.

    Args:
      unroll_length: steps per unroll (fix_unroll_length).
      num_steps: the training horizon of each stage, in steps.
      min_num_eval: evaluations a stage needs before it can end.

    Raises:
      ValueError: fewer than two stages, or a horizon shorter than one unroll.
    """
    if len(num_steps) < 2:
      raise ValueError("a curriculum needs at least two stages, got %r" %
                       (num_steps,))
    self.num_steps = tuple(num_steps)
    self.num_unrolls_train = [int(s / unroll_length) for s in num_steps]
    if min(self.num_unrolls_train) < 1:
      raise ValueError("every stage needs at least one unroll of %d steps: %r"
                       % (unroll_length, num_steps))
    self.num_unrolls_eval = self.num_unrolls_train[1:]
    self.min_num_eval = min_num_eval
    self.stage = 0
    self.num_eval = 0
    self.improved = False
    self.best = math.inf

  @property
  def train_unrolls(self):
    """Unrolls per training meta-iteration at the current stage."""
    return self.num_unrolls_train[self.stage]

  @property
  def eval_unrolls(self):
    """Unrolls per evaluation trajectory: the next stage's horizon."""
    return self.num_unrolls_eval[self.stage]

  def record(self, cost):
    """Takes an evaluation cost and returns what the loop must do."""
    self.num_eval += 1
    if cost < self.best:
      self.best = cost
      self.improved = True
      return IMPROVED
    if self.num_eval < self.min_num_eval:
      return CONTINUE
    if not self.improved:
      return STOP
    if self.stage + 1 >= len(self.num_unrolls_eval):
      return FINISHED
    self.stage += 1
    self.num_eval = 0
    self.improved = False
    return ADVANCE

  def set_baseline(self, cost):
    """The best cost of a new stage, measured at its evaluation horizon."""
    self.best = cost
