"""Every meta-training run records its start; how far it moved is measured.

Short HierarchicalRNN runs on a 3-dimensional quadratic: the start
checkpoint (`model.ckpt-initial`), resumption, the progress lines and the
end-of-run warning, provenance's distances against numpy, and evaluation of
the start by name.
"""

from tests import test_util

import io
import os
import shutil
import tempfile

import numpy as np
import tensorflow.compat.v1 as tf

import metaopt
from meta_training import config as meta_config
from optimizer import checkpoint_files
from optimizer import checkpoints
from optimizer import provenance
from optimizer import settings
from problems import problem_generator as pg
from problems import problem_spec
from run_control import configs

INITIAL = checkpoint_files.INITIAL
_MOVING_RATE = 100.


def _train(logdir, learning_rate, iterations=2, seed=1):
  """A short HierarchicalRNN run (default settings) on a quadratic; returns
  its log."""
  values = dict(num_meta_iterations=iterations,
                meta_learning_rate=learning_rate, fix_unroll=True,
                fix_unroll_length=2, fix_num_steps=4, fix_num_steps_eval=4,
                evaluation_epochs=1)
  out = io.StringIO()
  metaopt.train_optimizer(
      logdir, settings.optimizer_spec(settings.defaults()),
      [(problem_spec.Spec(pg.Quadratic, (3,), {"random_seed": 0}), None,
        None)],
      schedule=configs.from_flags(meta_config.Schedule, values),
      meta_optimizer=configs.from_flags(meta_config.MetaOptimizer, values),
      evaluation=configs.from_flags(meta_config.Evaluation, values),
      seed=seed, out=out)
  return out.getvalue()


def _all_tensors(prefix):
  reader = tf.train.load_checkpoint(prefix)
  return {n: reader.get_tensor(n)
          for n in reader.get_variable_to_shape_map()}


def _file_bytes(prefix):
  directory, base = os.path.split(prefix)
  result = {}
  for name in sorted(os.listdir(directory)):
    if name.startswith(base + "."):
      with open(os.path.join(directory, name), "rb") as f:
        result[name] = f.read()
  return result


class RecordedStartTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(prefix="recorded_start")
    cls.moving = os.path.join(cls.root, "moving")
    # RMSProp's mean-square slot starts at 1, so the first meta-updates are
    # about learning_rate * |meta-gradient|, and the meta-gradients here
    # are ~1e-5: a large rate moves the meta-parameters measurably.
    cls.moving_log = _train(cls.moving, _MOVING_RATE)
    cls.still = os.path.join(cls.root, "still")
    cls.still_log = _train(cls.still, 0.)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def test_the_start_is_saved_before_the_first_meta_update(self):
    stored = _all_tensors(os.path.join(self.moving, INITIAL))
    self.assertEqual(stored["global_step"], 0)
    names = provenance.meta_parameter_names(stored)
    self.assertLen(names, 31)
    for name in names:
      self.assertAllEqual(stored[name + "/RMSProp"],
                          np.ones_like(stored[name]))
      self.assertAllEqual(stored[name + "/RMSProp_1"],
                          np.zeros_like(stored[name]))
    # Without the progress counter it sorts below every numbered checkpoint.
    self.assertNotIn(checkpoint_files.PROGRESS_VARIABLE, stored)
    self.assertEqual(checkpoint_files.latest(self.moving),
                     os.path.join(self.moving, "model.ckpt-2"))
    self.assertIn("recorded the starting meta-parameters in " + INITIAL,
                  self.moving_log)

  def test_the_start_is_where_the_run_began(self):
    # At meta-learning rate 0 nothing moves: the start is the end.
    start = _all_tensors(os.path.join(self.still, INITIAL))
    end = _all_tensors(os.path.join(self.still, "model.ckpt-2"))
    for name in provenance.meta_parameter_names(start):
      self.assertAllEqual(start[name], end[name], name)
    # A seeded run draws the same start again.
    again = os.path.join(self.root, "still_again")
    _train(again, 0.)
    repeat = _all_tensors(os.path.join(again, INITIAL))
    for name in provenance.meta_parameter_names(start):
      self.assertAllEqual(start[name], repeat[name], name)

  def test_provenance_of_a_run_that_did_not_move_is_exactly_zero(self):
    result = provenance.examine(self.still)
    self.assertEqual(result["checkpoint"],
                     os.path.join(self.still, "model.ckpt-2"))
    self.assertEqual(result["total"]["distance"], 0.)
    self.assertEqual(result["total"]["relative"], 0.)
    self.assertTrue(result["at_start"])
    self.assertStartsWith(result["verdict"], "at its start")
    self.assertEqual(result["global_step"], 4)
    self.assertEqual(result["meta_iterations"], 2)

  def test_provenance_distances_equal_numpy_on_the_two_checkpoints(self):
    result = provenance.examine(self.moving, "model.ckpt-2")
    start = _all_tensors(os.path.join(self.moving, INITIAL))
    end = _all_tensors(os.path.join(self.moving, "model.ckpt-2"))
    names = [n for n in start if n.startswith("LOL/") and
             not n.endswith(("/RMSProp", "/RMSProp_1"))]
    squared = sum(np.sum((end[n].astype(np.float64) - start[n]) ** 2)
                  for n in names)
    norm = np.sqrt(sum(np.sum(start[n].astype(np.float64) ** 2)
                       for n in names))
    total = result["total"]
    self.assertAllClose(total["distance"], np.sqrt(squared), rtol=1e-12)
    self.assertAllClose(total["start_norm"], norm, rtol=1e-12)
    self.assertAllClose(total["relative"], np.sqrt(squared) / norm,
                        rtol=1e-12)
    self.assertGreater(total["relative"], provenance.EFFECTIVELY_UNMOVED)
    self.assertStartsWith(result["verdict"], "moved ")
    # The groups split the meta-parameters: their squares add up.
    groups = result["groups"]
    self.assertEqual(sum(g["scalars"] for g in groups), 8349)
    self.assertAllClose(sum(g["distance"] ** 2 for g in groups), squared,
                        rtol=1e-12)
    readout = [g for g in groups if g["name"] == "learning_rate_readout"][0]
    lr_names = ["LOL/learning_rate_weights", "LOL/learning_rate_bias",
                "LOL/PerTensor/learning_rate_momentum_logit",
                "LOL/PerTensor/param_stepsize_offset"]
    self.assertAllClose(
        readout["distance"],
        np.sqrt(sum(np.sum((end[n].astype(np.float64) - start[n]) ** 2)
                    for n in lr_names)), rtol=1e-12)

  def test_progress_lines_and_the_last_line_say_how_far_it_moved(self):
    moved = provenance.examine(self.moving, "model.ckpt-2")["total"]
    last = [line for line in self.moving_log.splitlines()
            if line.startswith("meta-iteration 2/2")]
    self.assertIn("moved %.3g%%" % (100. * moved["relative"]), last[0])
    self.assertIn("the meta-parameters moved %.3g %% of their norm from the "
                  "start" % (100. * moved["relative"]), self.moving_log)
    self.assertNotIn("warning", self.moving_log)

  def test_a_run_that_did_not_move_warns_once_naming_the_flag(self):
    warnings = [line for line in self.still_log.splitlines()
                if line.startswith("warning")]
    self.assertLen(warnings, 1)
    self.assertIn("after 2 meta-iterations at --meta_learning_rate=0 the "
                  "meta-parameters are effectively where they started "
                  "(every change below float32 resolution)", warnings[0])
    self.assertIn("raise --meta_learning_rate", warnings[0])

  def test_a_resumed_run_keeps_its_original_start(self):
    logdir = os.path.join(self.root, "resumed")
    shutil.copytree(self.moving, logdir)
    before = _file_bytes(os.path.join(logdir, INITIAL))
    log = _train(logdir, _MOVING_RATE, iterations=3)
    self.assertIn("resuming from", log)
    self.assertNotIn("recorded the starting", log)
    self.assertEqual(_file_bytes(os.path.join(logdir, INITIAL)), before)
    self.assertEqual(provenance.examine(logdir)["meta_iterations"], 3)

  def test_a_run_killed_before_its_first_save_resumes_from_the_start(self):
    logdir = os.path.join(self.root, "killed_early")
    os.makedirs(logdir)
    for name in os.listdir(self.still):
      if name.startswith(INITIAL + "."):
        shutil.copy(os.path.join(self.still, name), logdir)
    before = _file_bytes(os.path.join(logdir, INITIAL))
    log = _train(logdir, 0., seed=7)
    self.assertIn("resuming from %s, global step 0" %
                  os.path.join(logdir, INITIAL), log)
    self.assertEqual(_file_bytes(os.path.join(logdir, INITIAL)), before)
    # Resumed, not drawn again with seed 7: the end is the recorded start.
    start = _all_tensors(os.path.join(logdir, INITIAL))
    end = _all_tensors(os.path.join(logdir, "model.ckpt-2"))
    for name in provenance.meta_parameter_names(start):
      self.assertAllEqual(start[name], end[name], name)

  def test_the_start_loads_by_name_like_any_checkpoint(self):
    start = _all_tensors(os.path.join(self.moving, INITIAL))
    with tf.Graph().as_default():
      optimizer = checkpoints.load_learned_optimizer(
          self.moving, restore_model_name=INITIAL)
      variables = checkpoints.meta_variables()
      with self.session() as sess:
        sess.run(tf.global_variables_initializer())
        values = sess.run({v.op.name: v for v in variables})
    self.assertEqual(optimizer.checkpoint_path,
                     os.path.join(self.moving, INITIAL))
    self.assertLen(values, 31)
    for name, value in values.items():
      self.assertAllEqual(value, start[name], name)


if __name__ == "__main__":
  tf.test.main()
