"""Tests of meta_training.roles: who evaluates, writes and how runs end."""

from tests import test_util  # pylint: disable=unused-import

import collections

import tensorflow.compat.v1 as tf

from meta_training import roles


class FakeWorker(object):

  def __init__(self, task):
    self.config = collections.namedtuple("Config", "task")(task)
    self.is_chief = task == 0
    self.reported = False

  def report_done(self):
    self.reported = True


class RolesTest(tf.test.TestCase):

  def test_one_process_evaluates_and_writes(self):
    role = roles.for_worker(None, saves_last=False)
    self.assertIsInstance(role, roles.SingleProcess)
    self.assertTrue(role.evaluates and role.writes)
    self.assertFalse(role.saves_last)
    lines = []
    role.report("/tmp/run", 0.5, lines.append)
    self.assertEqual(lines, ["checkpoints in /tmp/run (best evaluation 0.5 "
                             "in model.ckpt-0)"])

  def test_the_chief_evaluates_writes_and_saves_last(self):
    role = roles.for_worker(FakeWorker(0), saves_last=False)
    self.assertIsInstance(role, roles.Chief)
    self.assertTrue(role.evaluates and role.writes and role.saves_last)

  def test_another_worker_only_trains_and_reports_to_the_chief(self):
    worker = FakeWorker(2)
    role = roles.for_worker(worker)
    self.assertIsInstance(role, roles.OtherWorker)
    self.assertFalse(role.evaluates or role.writes)
    self.assertIsNone(role.open_log_directory("/nonexistent", print))
    self.assertIsNone(role.resume_checkpoint("/nonexistent"))
    role.finish(None, None, "/nonexistent", 10, print)
    self.assertTrue(worker.reported)
    lines = []
    role.report("/nonexistent", float("inf"), lines.append)
    self.assertEqual(lines, ["worker 2: done"])


if __name__ == "__main__":
  tf.test.main()
