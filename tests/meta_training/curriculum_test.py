"""Tests of the curriculum schedule with scripted evaluation costs."""

from tests import test_util  # pylint: disable=unused-import

import tensorflow.compat.v1 as tf

from meta_training import curriculum


class CurriculumScheduleTest(tf.test.TestCase):

  def test_default_horizons_follow_the_original(self):
    schedule = curriculum.CurriculumSchedule(20)
    self.assertEqual(schedule.num_unrolls_train,
                     [5, 10, 25, 50, 75, 100, 125, 150, 175, 200, 225, 250])
    self.assertEqual(schedule.num_unrolls_eval,
                     schedule.num_unrolls_train[1:])
    self.assertEqual((schedule.train_unrolls, schedule.eval_unrolls), (5, 10))
    self.assertEqual(schedule.min_num_eval, 3)

  def test_improvements_then_a_worse_cost_advance_the_stage(self):
    schedule = curriculum.CurriculumSchedule(20)
    actions = [schedule.record(c) for c in (5.0, 4.0, 4.5)]
    self.assertEqual(actions, [curriculum.IMPROVED, curriculum.IMPROVED,
                               curriculum.ADVANCE])
    self.assertEqual(schedule.stage, 1)
    self.assertEqual((schedule.train_unrolls, schedule.eval_unrolls),
                     (10, 25))
    schedule.set_baseline(6.0)
    self.assertEqual(schedule.record(6.5), curriculum.CONTINUE)
    self.assertEqual(schedule.record(5.5), curriculum.IMPROVED)

  def test_a_stage_ends_only_after_min_num_eval_evaluations(self):
    schedule = curriculum.CurriculumSchedule(20, min_num_eval=4)
    actions = [schedule.record(c) for c in (5.0, 6.0, 6.0, 6.0)]
    self.assertEqual(actions, [curriculum.IMPROVED] + [curriculum.CONTINUE] * 2
                     + [curriculum.ADVANCE])

  def test_a_stage_without_improvement_stops(self):
    schedule = curriculum.CurriculumSchedule(20)
    schedule.record(5.0)
    schedule.record(6.0)
    self.assertEqual(schedule.record(6.0), curriculum.ADVANCE)
    schedule.set_baseline(1.0)
    actions = [schedule.record(c) for c in (2.0, 2.0, 2.0)]
    self.assertEqual(actions, [curriculum.CONTINUE] * 2 + [curriculum.STOP])
    self.assertEqual(schedule.stage, 1)

  def test_nan_costs_never_improve(self):
    schedule = curriculum.CurriculumSchedule(20)
    actions = [schedule.record(float("nan")) for _ in range(3)]
    self.assertEqual(actions[-1], curriculum.STOP)

  def test_the_last_stage_finishes_cleanly(self):
    schedule = curriculum.CurriculumSchedule(10, num_steps=(10, 20, 30))
    for _ in range(2):  # stages 0 and 1 have evaluation horizons
      schedule.record(1.0)
      schedule.record(2.0)
      action = schedule.record(2.0)
      if action == curriculum.ADVANCE:
        schedule.set_baseline(3.0)
    self.assertEqual(action, curriculum.FINISHED)
    self.assertEqual(schedule.stage, 1)

  def test_bad_schedules_are_rejected(self):
    with self.assertRaises(ValueError):
      curriculum.CurriculumSchedule(20, num_steps=(100,))
    with self.assertRaises(ValueError):
      curriculum.CurriculumSchedule(200, num_steps=(100, 400))


if __name__ == "__main__":
  tf.test.main()
