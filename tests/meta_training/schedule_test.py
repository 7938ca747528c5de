"""Tests of meta_training.schedule: the unroll schedules' decisions."""

from tests import test_util  # pylint: disable=unused-import

import math

import tensorflow.compat.v1 as tf

from meta_training import config
from meta_training import schedule as schedule_lib


class FakeDraw(object):
  """Records what a schedule asks of the loop."""

  def __init__(self, evaluations=()):
    self.best = math.inf
    self.calls = []
    self.lines = []
    self._evaluations = list(evaluations)

  def log(self, message):
    self.lines.append(message)

  def checkpoint_name(self, number):
    return "model.ckpt-%d" % number

  def save(self, number):
    self.calls.append(("save", number))

  def keep_best(self, cost):
    self.best = cost
    self.calls.append(("keep_best", cost))

  def load_best(self, cost):
    self.calls.append(("load_best", cost))

  def reload_best(self):
    self.calls.append(("reload_best",))

  def restore_meta_parameters(self, number):
    self.calls.append(("restore", number))

  def evaluate(self, lengths):
    self.calls.append(("evaluate", len(lengths)))
    return self._evaluations.pop(0)


class MakeTest(tf.test.TestCase):

  def test_the_config_picks_the_schedule(self):
    evaluation = config.Evaluation(num_steps=60)
    fixed = schedule_lib.make(config.Schedule(fixed=True), evaluation, True)
    self.assertIsInstance(fixed, schedule_lib.FixedSchedule)
    self.assertEqual(fixed.evaluation_lengths(), [20] * 3)
    self.assertIsInstance(schedule_lib.make(config.Schedule(), evaluation,
                                            True),
                          schedule_lib.RandomSchedule)
    curriculum = schedule_lib.make(
        config.Schedule(curriculum=True, unroll_length=10,
                        curriculum_steps=(20, 40)), evaluation, True)
    self.assertEqual(curriculum.unroll_lengths(), [10] * 2)
    self.assertEqual(curriculum.evaluation_lengths(), [10] * 4)
    self.assertEqual(curriculum.note, "  [curriculum stage 0: 20 steps]")

  def test_curriculum_stages_caps_the_stages(self):
    evaluation = config.Evaluation()
    capped = schedule_lib.make(
        config.Schedule(curriculum=True, unroll_length=10,
                        curriculum_steps=(20, 40, 60, 80),
                        curriculum_stages=2), evaluation, True)
    # Stage 1 (40 steps) is the last trained; it is evaluated on 60 steps.
    self.assertEqual(capped.state.num_steps, (20, 40, 60))
    self.assertEqual(capped.state.num_unrolls_eval, [4, 6])
    whole = schedule_lib.make(
        config.Schedule(curriculum=True, unroll_length=10,
                        curriculum_steps=(20, 40, 60, 80)), evaluation, True)
    self.assertEqual(whole.state.num_steps, (20, 40, 60, 80))


class PeriodicScheduleTest(tf.test.TestCase):

  def test_a_better_evaluation_is_kept_and_saves_follow_the_period(self):
    schedule = schedule_lib.FixedSchedule(2, 4, 2, save_period=2,
                                          num_meta_iterations=3,
                                          saves_last=True)
    draw = FakeDraw()
    self.assertFalse(schedule.after_evaluation(3.0, 1, draw))
    self.assertEqual(draw.lines, ["evaluation 1, cost=3"])
    for local_k, cost in enumerate([3.0, None, 4.0]):
      schedule.after_meta_iteration(local_k, 10 + local_k, cost, draw)
    self.assertEqual(draw.calls, [("keep_best", 3.0), ("save", 12),
                                  ("save", 13)])

  def test_without_saves_last_only_the_period_saves(self):
    schedule = schedule_lib.FixedSchedule(2, 4, 2, save_period=2,
                                          num_meta_iterations=3,
                                          saves_last=False)
    draw = FakeDraw()
    for local_k in range(3):
      schedule.after_meta_iteration(local_k, local_k, None, draw)
    self.assertEqual(draw.calls, [("save", 2)])


class CurriculumScheduleTest(tf.test.TestCase):

  def test_improvements_save_and_an_advance_restores_and_remeasures(self):
    schedule = schedule_lib.CurriculumSchedule(2, num_steps=(4, 8, 12))
    draw = FakeDraw(evaluations=[6.0])
    for index, cost in enumerate([5.0, 4.0], 1):
      self.assertFalse(schedule.after_evaluation(cost, index, draw))
    self.assertFalse(schedule.after_evaluation(4.5, 3, draw))
    self.assertEqual(draw.calls, [
        ("load_best", 5.0), ("save", 0), ("load_best", 4.0), ("save", 0),
        ("restore", 0), ("evaluate", 6)])
    self.assertIn("curriculum 0 -> 1: restored model.ckpt-0; evaluation 3, "
                  "num_steps=8, cost=6", draw.lines)
    self.assertEqual(schedule.unroll_lengths(), [2] * 4)
    self.assertEqual(schedule.state.best, 6.0)

  def test_a_stage_without_improvement_stops(self):
    schedule = schedule_lib.CurriculumSchedule(2, num_steps=(4, 8))
    draw = FakeDraw()
    schedule.state.best = 1.0
    stops = [schedule.after_evaluation(2.0, i, draw) for i in range(3)]
    self.assertEqual(stops, [False, False, True])
    self.assertEqual(draw.lines[-1], "no improve during curriculum 0 --> stop")

  def test_after_a_meta_iteration_the_best_is_read_back(self):
    draw = FakeDraw()
    schedule_lib.CurriculumSchedule(2, num_steps=(4, 8)).after_meta_iteration(
        0, 0, None, draw)
    self.assertEqual(draw.calls, [("reload_best",)])


if __name__ == "__main__":
  tf.test.main()
