"""Tests of optimizer.checkpoint_files: whole saves, recovery, verification."""

from tests import test_util

import os
import shutil

import numpy as np
import tensorflow.compat.v1 as tf

from optimizer import checkpoint_files


class _Graph(object):
  """A variable, the global step and the progress counter, and a saver."""

  def __init__(self):
    self.graph = tf.Graph()
    with self.graph.as_default():
      self.weights = tf.get_variable("LOL/w", initializer=np.zeros(
          200, np.float32))
      self.step = tf.train.get_or_create_global_step()
      with tf.variable_scope("meta_training"):
        self.done = tf.get_variable("meta_iterations_done", [], tf.int64,
                                    initializer=tf.zeros_initializer())
      self.saver = tf.train.Saver(max_to_keep=None)
      init = tf.global_variables_initializer()
    self.sess = tf.Session(graph=self.graph)
    self.sess.run(init)

  def save(self, directory, number, value, done):
    self.weights.load(np.full(200, value, np.float32), self.sess)
    self.step.load(done * 10, self.sess)
    self.done.load(done, self.sess)
    return checkpoint_files.save(self.sess, self.saver, directory, number)

  def value_in(self, prefix):
    reader = tf.train.load_checkpoint(prefix)
    return float(reader.get_tensor("LOL/w")[0])


def _checksums(directory):
  out = {}
  for name in sorted(os.listdir(directory)):
    with open(os.path.join(directory, name), "rb") as f:
      out[name] = hash(f.read())
  return out


class _Killed(Exception):
  """Stands for the process dying at the patched point."""


class CheckpointFilesTest(test_util.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = os.path.join(self.get_temp_dir(), "log")
    os.makedirs(self.dir)
    self.g = _Graph()

  def tearDown(self):
    self.g.sess.close()
    super().tearDown()

  def test_the_state_file_names_checkpoints_relative_to_its_directory(self):
    self.g.save(self.dir, 1, 1., 1)
    self.g.save(self.dir, 0, 0.5, 1)
    self.g.save(self.dir, 2, 2., 2)
    with open(os.path.join(self.dir, "checkpoint")) as f:
      text = f.read()
    self.assertNotIn(self.dir, text)
    self.assertIn('model_checkpoint_path: "model.ckpt-2"', text)
    for k in (0, 1, 2):
      self.assertIn('all_model_checkpoint_paths: "model.ckpt-%d"' % k, text)
    # Plain TensorFlow reads it, also after a move.
    moved = self.dir + "-moved"
    shutil.move(self.dir, moved)
    self.assertEqual(tf.train.latest_checkpoint(moved),
                     os.path.join(moved, "model.ckpt-2"))
    self.assertEqual(checkpoint_files.latest_complete(moved),
                     os.path.join(moved, "model.ckpt-2"))

  def test_an_absolute_state_file_of_an_older_run_is_read_by_file_name(self):
    self.g.save(self.dir, 3, 3., 3)
    copy = self.dir + "-copy"
    shutil.copytree(self.dir, copy)
    with open(os.path.join(copy, "checkpoint"), "w") as f:
      f.write('model_checkpoint_path: "%s/model.ckpt-3"\n' % self.dir)
    shutil.rmtree(self.dir)
    self.assertEqual(checkpoint_files.latest(copy),
                     os.path.join(copy, "model.ckpt-3"))

  def test_missing_garbage_or_dangling_state_files_fall_back_to_files(self):
    self.g.save(self.dir, 1, 1., 1)
    self.g.save(self.dir, 0, 0.5, 2)
    self.g.save(self.dir, 2, 2., 2)
    self.g.save(self.dir, 3, 3., 3)
    state = os.path.join(self.dir, "checkpoint")
    expected = os.path.join(self.dir, "model.ckpt-3")
    for content in (None, b"\x00\xffgarbage", b'model_checkpoint_path: '
                    b'"model.ckpt-99"\n'):
      if content is None:
        os.remove(state)
      else:
        with open(state, "wb") as f:
          f.write(content)
      self.assertEqual(checkpoint_files.latest_complete(self.dir), expected)
    # Newest by progress, not by number: model.ckpt-0 is the best and may
    # be the most recent.
    self.g.save(self.dir, 0, 0.25, 4)
    os.remove(state)
    self.assertEqual(checkpoint_files.latest_complete(self.dir),
                     os.path.join(self.dir, "model.ckpt-0"))

  def test_verify_reads_every_tensor(self):
    prefix = self.g.save(self.dir, 1, 1., 1)
    self.assertEqual(checkpoint_files.verify(prefix)["LOL/w"], [200])
    data = prefix + ".data-00000-of-00001"
    with open(data, "rb") as f:
      content = f.read()
    with open(data, "wb") as f:
      f.write(content[:len(content) // 2])
    with self.assertRaisesRegex(checkpoint_files.CheckpointError,
                                "model.ckpt-1: unreadable checkpoint"):
      checkpoint_files.verify(prefix)
    flipped = bytearray(content)
    flipped[100] ^= 0xff
    with open(data, "wb") as f:
      f.write(bytes(flipped))
    with self.assertRaises(checkpoint_files.CheckpointError) as context:
      checkpoint_files.verify(prefix)
    self.assertNotIn("\n", str(context.exception))
    os.remove(data)
    with self.assertRaisesRegex(checkpoint_files.CheckpointError,
                                "incomplete"):
      checkpoint_files.verify(prefix)

  def test_resume_skips_a_broken_newest_checkpoint_and_says_so(self):
    self.g.save(self.dir, 1, 1., 1)
    newest = self.g.save(self.dir, 2, 2., 2)
    with open(newest + ".data-00000-of-00001", "r+b") as f:
      f.truncate(10)
    log = []
    self.assertEqual(checkpoint_files.latest_complete(self.dir, log.append),
                     os.path.join(self.dir, "model.ckpt-1"))
    self.assertIn("model.ckpt-2: unreadable", log[0])
    self.assertEqual(log[1], "using model.ckpt-1 instead")

  def test_no_readable_checkpoint_is_an_error_that_changes_nothing(self):
    prefix = self.g.save(self.dir, 1, 1., 1)
    with open(prefix + ".data-00000-of-00001", "r+b") as f:
      f.truncate(10)
    before = _checksums(self.dir)
    with self.assertRaisesRegex(checkpoint_files.CheckpointError,
                                "none reads back whole"):
      checkpoint_files.latest_complete(self.dir)
    self.assertEqual(_checksums(self.dir), before)
    self.assertIsNone(checkpoint_files.latest_complete(
        os.path.join(self.get_temp_dir(), "empty")))

  def _kill_at(self, call):
    """Patches the n-th rename of a save to kill the 'process' there."""
    calls = []
    original = checkpoint_files._replace  # pylint: disable=protected-access

    def replace(source, target):
      calls.append(target)
      if len(calls) == call:
        raise _Killed()
      original(source, target)

    checkpoint_files._replace = replace  # pylint: disable=protected-access
    self.addCleanup(setattr, checkpoint_files, "_replace", original)
    return calls

  def test_a_kill_between_data_and_index_is_completed_at_the_next_start(self):
    prefix = self.g.save(self.dir, 0, 1., 1)
    calls = self._kill_at(2)  # data renamed, index not yet
    with self.assertRaises(_Killed):
      self.g.save(self.dir, 0, 2., 2)
    self.assertTrue(calls[0].endswith(".data-00000-of-00001"))
    # The old index is gone, so the old one cannot be read with new data.
    self.assertFalse(checkpoint_files.is_complete(prefix))
    # A reader meanwhile finds the new version under its temporary name.
    readable = checkpoint_files.readable(self.dir, "model.ckpt-0")
    self.assertEqual(self.g.value_in(readable), 2.)
    completed, _ = checkpoint_files.recover(self.dir)
    self.assertEqual(completed, ["model.ckpt-0"])
    checkpoint_files.verify(prefix)
    self.assertEqual(self.g.value_in(prefix), 2.)
    self.assertEqual(sorted(n for n in os.listdir(self.dir)
                            if n.startswith(".")), [])

  def test_a_kill_before_the_commit_point_keeps_the_previous_one(self):
    prefix = self.g.save(self.dir, 0, 1., 1)
    original = checkpoint_files.atomic.write_text

    def die_at_marker(path, text):
      if path.endswith(".commit"):
        raise _Killed()
      original(path, text)

    checkpoint_files.atomic.write_text = die_at_marker
    self.addCleanup(setattr, checkpoint_files.atomic, "write_text", original)
    with self.assertRaises(_Killed):
      self.g.save(self.dir, 0, 2., 2)
    checkpoint_files.atomic.write_text = original
    self.assertTrue(any(".partial" in n for n in os.listdir(self.dir)))
    completed, removed = checkpoint_files.recover(self.dir)
    self.assertEqual(completed, [])
    self.assertTrue(removed)
    self.assertEqual(self.g.value_in(prefix), 1.)
    self.assertEqual(checkpoint_files.latest_complete(self.dir), prefix)

  def test_recover_removes_the_leftovers_of_killed_writers(self):
    self.g.save(self.dir, 1, 1., 1)
    leftovers = ["model.ckpt-2.index.tempstate123",
                 "model.ckpt-2.data-00000-of-00001.tempstate456",
                 "checkpoint.tmp3fa9", "summary.json.tmp-4242",
                 ".optimizer.json.tmp-77"]
    for name in leftovers:
      open(os.path.join(self.dir, name), "w").close()
    _, removed = checkpoint_files.recover(self.dir)
    self.assertCountEqual(removed, leftovers)
    self.assertCountEqual(
        os.listdir(self.dir),
        ["checkpoint", "model.ckpt-1.index",
         "model.ckpt-1.data-00000-of-00001"])


if __name__ == "__main__":
  tf.test.main()
