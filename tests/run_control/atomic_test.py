"""Tests of run_control.atomic: whole files, and leftovers removed."""

import errno
import json
import os
import tempfile
import unittest
from unittest import mock

from run_control import atomic


class AtomicTest(unittest.TestCase):

  def setUp(self):
    self.dir = tempfile.mkdtemp()
    self.path = os.path.join(self.dir, "summary.json")

  def test_a_write_replaces_the_file_and_leaves_no_temporary(self):
    atomic.write_json(self.path, {"a": [1, 2]})
    atomic.write_json(self.path, {"b": 3})
    with open(self.path) as f:
      self.assertEqual(json.load(f), {"b": 3})
    self.assertEqual(os.listdir(self.dir), ["summary.json"])

  def test_a_failed_write_keeps_the_old_file(self):
    atomic.write_text(self.path, "old\n")
    with mock.patch.object(atomic.os, "replace",
                           side_effect=KeyboardInterrupt):
      with self.assertRaises(KeyboardInterrupt):
        atomic.write_text(self.path, "new\n")
    with open(self.path) as f:
      self.assertEqual(f.read(), "old\n")
    self.assertEqual(os.listdir(self.dir), ["summary.json"])

  def test_a_full_disk_is_recognised_in_its_several_forms(self):
    self.assertTrue(atomic.is_disk_full(OSError(errno.ENOSPC, "full")))
    self.assertTrue(atomic.is_disk_full(OSError(errno.EDQUOT, "quota")))
    # TensorFlow's errors carry the system's message.
    self.assertTrue(atomic.is_disk_full(RuntimeError(
        "/x/events.out.tfevents.1; No space left on device")))
    # An error raised while handling one (a writer closed in a finally).
    try:
      try:
        raise OSError(errno.ENOSPC, "No space left on device")
      finally:
        raise ValueError("another")
    except ValueError as e:
      self.assertTrue(atomic.is_disk_full(e))
    self.assertFalse(atomic.is_disk_full(OSError(errno.EACCES, "denied")))
    self.assertFalse(atomic.is_disk_full(ValueError("bad value")))

  def test_a_write_to_a_full_disk_keeps_the_old_file(self):
    atomic.write_text(self.path, "old\n")
    with mock.patch.object(atomic.os, "fsync",
                           side_effect=OSError(errno.ENOSPC, "full")):
      with self.assertRaises(OSError):
        atomic.write_text(self.path, "new\n")
    with open(self.path) as f:
      self.assertEqual(f.read(), "old\n")
    self.assertEqual(os.listdir(self.dir), ["summary.json"])

  def test_leftovers_are_removed_and_other_files_kept(self):
    keep = ["summary.json", "seed6_eval_loss_record.pickle-L2o",
            "model.ckpt-1.index"]
    leftovers = [".summary.json.tmp-123", "model.ckpt-1.index.tempstate9",
                 "checkpoint.tmp77ab", "optimizer.json.tmp-4"]
    for name in keep + leftovers:
      open(os.path.join(self.dir, name), "w").close()
    self.assertCountEqual(atomic.remove_leftovers(self.dir), leftovers)
    self.assertCountEqual(os.listdir(self.dir), keep)


if __name__ == "__main__":
  unittest.main()
