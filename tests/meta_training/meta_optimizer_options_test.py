"""The meta-optimizer options in whole meta-training runs.

Short HierarchicalRNN runs on a 3-dimensional quadratic: meta-training
restricted to named groups leaves every other meta-parameter bit-identical
to its recorded start; an Adam run with a schedule and a bounded meta-loss
saves its slots and counters and resumes at its global step.
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
from optimizer import hierarchical_rnn
from optimizer import provenance
from optimizer import settings
from problems import problem_generator as pg
from problems import problem_spec
from run_control import configs


def _train(logdir, iterations=2, **flags):
  """A short HierarchicalRNN run on a quadratic with meta-training `flags`;
  returns its log."""
  values = dict(configs.to_flags(meta_config.MetaOptimizer()),
                num_meta_iterations=iterations, fix_unroll=True,
                fix_unroll_length=2, fix_num_steps=4, fix_num_steps_eval=4,
                evaluation_epochs=1, **flags)
  out = io.StringIO()
  metaopt.train_optimizer(
      logdir, settings.optimizer_spec(settings.defaults()),
      [(problem_spec.Spec(pg.Quadratic, (3,), {"random_seed": 0}), None,
        None)],
      schedule=configs.from_flags(meta_config.Schedule, values),
      meta_optimizer=configs.from_flags(meta_config.MetaOptimizer, values),
      evaluation=configs.from_flags(meta_config.Evaluation, values),
      seed=1, out=out)
  return out.getvalue()


def _tensors(logdir, name):
  reader = tf.train.load_checkpoint(os.path.join(logdir, name))
  return {n: reader.get_tensor(n)
          for n in reader.get_variable_to_shape_map()}


class MetaOptimizerOptionsTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(prefix="meta_optimizer_options")

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def test_only_the_named_groups_move(self):
    logdir = os.path.join(self.root, "groups")
    chosen = ("learning_rate_readout", "update_readout")
    _train(logdir, meta_optimizer="adam", meta_learning_rate=1e-2,
           meta_parameter_groups=list(chosen))
    start = _tensors(logdir, checkpoint_files.INITIAL)
    end = _tensors(logdir, "model.ckpt-2")
    groups = hierarchical_rnn.HierarchicalRNN.META_PARAMETER_GROUPS
    moved = set()
    for name in provenance.meta_parameter_names(start):
      group = provenance.group_of(name, groups)
      if group in chosen:
        if not np.array_equal(start[name], end[name]):
          moved.add(group)
      else:
        self.assertAllEqual(start[name], end[name], name)
        # No slot either: the meta-optimizer never saw it.
        self.assertNotIn(name + "/Adam", end)
    self.assertEqual(moved, set(chosen))

  def test_adam_with_schedule_and_ceiling_saves_and_resumes(self):
    logdir = os.path.join(self.root, "adam")
    flags = dict(meta_optimizer="adam", meta_learning_rate=1e-2,
                 meta_learning_rate_warmup=2,
                 meta_learning_rate_schedule="cosine",
                 meta_learning_rate_decay_steps=20, meta_loss_ceiling=1.5,
                 gradient_clip_norm=1.)
    log = _train(logdir, **flags)
    self.assertNotIn("skipped", log)
    first = _tensors(logdir, "model.ckpt-2")
    self.assertEqual(first["global_step"], 4)
    self.assertEqual(first["meta_training/skipped_meta_updates"], 0)
    self.assertIn("beta1_power", first)
    names = provenance.meta_parameter_names(first)
    self.assertTrue(all(n + "/Adam" in first for n in names))
    log = _train(logdir, iterations=3, **flags)
    self.assertIn("resuming from", log)
    second = _tensors(logdir, "model.ckpt-3")
    self.assertEqual(second["global_step"], 6)
    # Adam's bias-correction powers went on from the saved ones (TF1 Adam's
    # start at beta1 and gain a factor per update: beta1^(t + 1)).
    self.assertAllClose(first["beta1_power"], 0.9 ** 5)
    self.assertAllClose(second["beta1_power"], 0.9 ** 7)
    self.assertGreater(provenance.examine(logdir)["total"]["relative"], 0.)


if __name__ == "__main__":
  tf.test.main()
