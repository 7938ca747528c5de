"""Choosing the checkpoint a study evaluates (experiments/selection.py)."""

from tests import test_util

import io
import json
import math
import os
import shutil
import tempfile

import numpy as np
import tensorflow.compat.v1 as tf

from experiments import plan
from experiments import selection
from optimizer import checkpoint_files


class SelectionTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    root = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, root)
    self.log_dir = os.path.join(root, "run", "log")
    self.folder = os.path.join(root, "run", "selection")
    os.makedirs(self.log_dir)
    # model.ckpt-initial, -1 ... -7 and -0 (the run's best, a copy of -2);
    # checkpoint k holds the value k.
    with tf.Graph().as_default():
      value = tf.placeholder(tf.float32, [3])
      variable = tf.Variable(tf.zeros([3]), name="theta")
      assign = variable.assign(value)
      saver = tf.train.Saver([variable])
      with self.session() as sess:
        for number in [None] + list(range(1, 8)) + [0]:
          content = 2. if number == 0 else (number or -1.)
          sess.run(assign, {value: np.full(3, content)})
          if number is None:
            checkpoint_files.save_as(sess, saver, self.log_dir,
                                     checkpoint_files.INITIAL)
          else:
            checkpoint_files.save(sess, saver, self.log_dir, number)
    self.calls = []

  def _evaluate_with(self, losses):
    """A metatest.py stand-in: writes a summary whose best grid point (of
    three) has the per-seed last-100 losses `losses[checkpoint name]`."""
    def evaluate(argv, out):
      del out
      values = dict(a[2:].split("=", 1) for a in argv)
      name = values["restore_model_name"]
      self.calls.append(name)
      per_seed = [{"seed": s, "final_loss_last100": v}
                  for s, v in zip((101, 102), losses[name])]
      os.makedirs(values["save_dir"], exist_ok=True)
      with open(os.path.join(values["save_dir"], "summary.json"), "w") as f:
        worse = [dict(e, final_loss_last100=e["final_loss_last100"] + 1.)
                 for e in per_seed]
        json.dump({"results": [
            {"per_seed": worse, "grid_point": "0.001:0.01"},
            {"per_seed": per_seed, "grid_point": "0.003"},
            {"per_seed": [{"final_loss_last100": math.inf}] * 2,
             "grid_point": "0.01"}]}, f)
      return 0
    return evaluate

  def test_candidates_are_every_kth_and_the_last_without_the_best_copy(self):
    self.assertEqual(selection.candidates(self.log_dir, 3),
                     ["model.ckpt-3", "model.ckpt-6", "model.ckpt-7"])
    self.assertEqual(selection.candidates(self.log_dir, 1),
                     ["model.ckpt-%d" % k for k in range(1, 8)])
    self.assertEqual(selection.candidates(self.folder, 1), [])

  def test_the_lowest_mean_is_copied_and_recorded(self):
    losses = {"model.ckpt-initial": [0.01, 0.01],  # never chosen
              "model.ckpt-2": [0.5, 0.3], "model.ckpt-4": [0.2, 0.4],
              "model.ckpt-6": [0.25, 0.2], "model.ckpt-7": [math.nan, 0.]}
    out = io.StringIO()
    chosen = selection.select(self.log_dir, self.folder, ["--seeds=101,102"],
                              2, self._evaluate_with(losses), out)
    self.assertEqual(chosen, "model.ckpt-6")
    prefix = os.path.join(self.log_dir, plan.SELECTED_CHECKPOINT)
    self.assertAllEqual(tf.train.load_checkpoint(prefix).get_tensor("theta"),
                        [6., 6., 6.])
    for suffix in (".index", ".data-00000-of-00001"):
      with open(prefix + suffix, "rb") as a, open(
          os.path.join(self.log_dir, "model.ckpt-6") + suffix, "rb") as b:
        self.assertEqual(a.read(), b.read())
    result = selection.read(self.folder)
    self.assertEqual(result["chosen"], "model.ckpt-6")
    scores = {e["checkpoint"]: e["last100_mean"] for e in result["scores"]}
    self.assertAllClose(scores["model.ckpt-6"], 0.225)
    self.assertAllClose(scores["model.ckpt-4"], 0.3)
    self.assertIsNone(scores["model.ckpt-7"])  # a non-finite seed
    self.assertAllClose(scores["model.ckpt-initial"], 0.01)
    self.assertEqual({e["grid_point"] for e in result["scores"]
                      if e["checkpoint"] != "model.ckpt-7"}, {"0.003"})
    self.assertIn("selected model.ckpt-6", out.getvalue())
    # The state file still names the run's latest checkpoint.
    self.assertEqual(checkpoint_files.state_file_choice(self.log_dir),
                     "model.ckpt-0")

  def test_finished_scores_are_not_redone(self):
    losses = {"model.ckpt-initial": [1., 1.], "model.ckpt-5": [0.3, 0.3],
              "model.ckpt-7": [0.2, 0.2]}
    evaluate = self._evaluate_with(losses)
    evaluate(["--restore_model_name=model.ckpt-5",
              "--save_dir=" + os.path.join(self.folder, "model.ckpt-5")],
             None)
    self.calls = []
    self.assertEqual(selection.select(self.log_dir, self.folder, [], 5,
                                      evaluate, io.StringIO()),
                     "model.ckpt-7")
    self.assertEqual(self.calls, ["model.ckpt-initial", "model.ckpt-7"])

  def test_a_failed_score_stops_the_selection(self):
    def failing(argv, out):
      del argv, out
      return 1
    with self.assertRaisesRegex(selection.SelectionError,
                                "scoring model.ckpt-initial failed"):
      selection.select(self.log_dir, self.folder, [], 5, failing,
                       io.StringIO())
    self.assertIsNone(selection.read(self.folder))
    self.assertFalse(checkpoint_files.is_complete(
        os.path.join(self.log_dir, plan.SELECTED_CHECKPOINT)))

  def test_split_argv(self):
    self.assertEqual(selection.split_argv(["--a=1", "--select_every=4"]),
                     (["--a=1"], 4))
    self.assertEqual(selection.split_argv(["--a=1"]), (["--a=1"], 1))


if __name__ == "__main__":
  tf.test.main()
