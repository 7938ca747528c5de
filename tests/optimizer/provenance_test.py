"""Tests of optimizer/provenance.py on checkpoints without a recorded start:
the original authors' published one, and altered copies of it."""

from tests import test_util

import io
import os
import re
import shutil
import unittest

import numpy as np
import tensorflow.compat.v1 as tf

from optimizer import hierarchical_rnn
from optimizer import provenance

_PUBLISHED = test_util.published_checkpoint()
_SKIP = "needs the published checkpoint in ../shared/data"


def _copy_with(prefix, folder, changes):
  """Writes checkpoint `prefix` to `folder`/model.ckpt-0 with `changes`
  (name -> function of the stored value) applied."""
  reader = tf.train.load_checkpoint(prefix)
  os.makedirs(folder)
  with tf.Graph().as_default():
    variables = []
    for name in sorted(reader.get_variable_to_shape_map()):
      value = reader.get_tensor(name)
      if name in changes:
        value = changes[name](value)
      variables.append(tf.Variable(value, name=name))
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      tf.train.Saver(variables).save(sess, os.path.join(folder,
                                                        "model.ckpt-0"))
  return os.path.join(folder, "model.ckpt-0")


class HelpersTest(tf.test.TestCase):

  def test_resolution_is_the_float32_spacing_at_one_or_above(self):
    self.assertAllEqual(provenance.resolution([0., 0.5, -1., 2.2, 300.]),
                        [2.**-23, 2.**-23, 2.**-23, 2.**-22, 2.**-15])
    self.assertTrue(provenance.below_resolution([2.2, 1e-8], [2.2, 0.]))
    self.assertFalse(provenance.below_resolution([2.2, 2e-7], [2.2, 0.]))

  def test_slots_are_told_from_meta_parameters_by_their_names(self):
    names = ["LOL/a", "LOL/a/RMSProp", "LOL/a/RMSProp_1", "LOL/b/c",
             "LOL/b/c/Adam", "global_step", "meta_training/x"]
    self.assertEqual(provenance.meta_parameter_names(names),
                     ["LOL/a", "LOL/b/c"])

  def test_every_hierarchical_rnn_variable_has_a_named_group(self):
    groups = hierarchical_rnn.HierarchicalRNN.META_PARAMETER_GROUPS
    names = [g for g, _ in groups]
    with tf.Graph().as_default():
      hierarchical_rnn.HierarchicalRNN([10, 20, 20], use_attention=True,
                                      use_gradient_shortcut=True)
      variables = tf.global_variables()
    found = {v.op.name: provenance.group_of(v.op.name, groups)
             for v in variables}
    self.assertLen(found, 33)
    self.assertEqual(sorted(set(found.values())), sorted(names))
    self.assertEqual(found["LOL/PerTensor/GradsToAttnDelta/Matrix"],
                     "update_readout")
    self.assertEqual(found["LOL/PerTensor/param_stepsize_offset"],
                     "learning_rate_readout")
    self.assertEqual(found["LOL/Level1_RNN/init_vector"],
                     "rnn_initial_states")
    # Without groups, a variable's first name component is its group.
    self.assertEqual(provenance.group_of("LOL/global_learning_rate", ()),
                     "global_learning_rate")

  def test_relative_change_is_over_all_variables_together(self):
    start = {"a": np.array([3., 0.]), "b": np.array([[4.]])}
    values = {"a": np.array([3., 1.]), "b": np.array([[4.]]), "c": 7.}
    self.assertAllClose(provenance.relative_change(values, start), 0.2)


@unittest.skipUnless(_PUBLISHED, _SKIP)
class PublishedCheckpointTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.result = provenance.examine(_PUBLISHED)

  def test_the_verdict_is_its_initialisation(self):
    out = io.StringIO()
    self.assertEqual(provenance.main([os.path.dirname(os.path.dirname(
        _PUBLISHED))], out=out), 0)
    text = out.getvalue()
    self.assertEqual(text.strip().splitlines()[-1], "verdict: at its "
                     "initialisation (every change below float32 resolution)")
    self.assertIn("meta-optimizer steps (global_step): 6", text)
    self.assertIn("8,349 meta-parameters in 31 variables", text)
    self.assertTrue(self.result["at_start"])
    self.assertIsNone(self.result["start"])
    self.assertIsNone(self.result["meta_iterations"])

  def test_constant_initialisers_are_still_at_their_constants(self):
    rows = {r["name"]: r for r in self.result["constants"]}
    self.assertLen(rows, 15)
    self.assertLen(self.result["random_variables"], 16)
    for name, row in rows.items():
      if re.search(r"gates/Affine/Bias$", name):
        self.assertEqual(row["constant"], np.float32(2.2), name)
        self.assertEqual(row["largest_change"], 0., name)
    for name, constant in (("LOL/scl_decay_bias", 3.2),
                           ("LOL/PerTensor/learning_rate_momentum_logit", 3.2),
                           ("LOL/PerTensor/param_stepsize_offset", -1.),
                           ("LOL/inp_decay_bias", 2.2)):
      self.assertEqual(rows[name]["constant"], np.float32(constant), name)
      self.assertEqual(rows[name]["largest_change"], 0., name)
    for name in ("LOL/learning_rate_weights", "LOL/learning_rate_bias"):
      self.assertEqual(rows[name]["constant"], 0.)
      self.assertBetween(rows[name]["largest_change"], 1e-10, 3e-9)
    reader = tf.train.load_checkpoint(_PUBLISHED)
    self.assertAllClose(rows["LOL/learning_rate_bias"]["largest_change"],
                        np.max(np.abs(reader.get_tensor(
                            "LOL/learning_rate_bias"))), rtol=1e-6)

  def test_slots_show_six_decays_without_meta_gradient(self):
    slots = self.result["slots"]
    self.assertEqual(slots["mean_square"]["slots"], 31)
    self.assertAllClose(slots["mean_square"]["zero_gradient_value"],
                        0.531441, rtol=1e-12)
    self.assertBetween(slots["mean_square"]["min"], 0.5314405, 0.5314415)
    self.assertBetween(slots["mean_square"]["max"], 0.5314405, 0.5314415)
    self.assertLess(slots["momentum"]["max_abs"], 1e-12)
    self.assertGreater(slots["momentum"]["max_abs"], 0.)


@unittest.skipUnless(_PUBLISHED, _SKIP)
class AlteredCheckpointTest(tf.test.TestCase):
  """The verdict turns when the file shows a change."""

  def _verdict(self, changes):
    folder = os.path.join(self.get_temp_dir(), "altered%d" % len(
        os.listdir(self.get_temp_dir())))
    prefix = _copy_with(_PUBLISHED, folder, changes)
    try:
      return provenance.examine(prefix)
    finally:
      shutil.rmtree(folder)

  def test_a_moved_constant_is_reported(self):
    name = "LOL/PerTensor/Layer0_RNN/BiasGRUCell/gates/Affine/Bias"
    result = self._verdict({name: lambda v: v + np.float32(1e-3)})
    self.assertFalse(result["at_start"])
    self.assertStartsWith(result["verdict"], "moved from its initialisation")
    row = [r for r in result["constants"] if r["name"] == name][0]
    self.assertAllClose(row["largest_change"], 1e-3, rtol=1e-3)

  def test_a_visible_last_step_is_reported(self):
    result = self._verdict({"LOL/update_weights/RMSProp_1":
                            lambda v: v + np.float32(1e-4)})
    self.assertFalse(result["at_start"])
    self.assertIn("last meta-update step up to", result["verdict"])

  def test_grown_mean_squares_are_reported(self):
    result = self._verdict({"LOL/update_weights/RMSProp":
                            lambda v: v * np.float32(1.5)})
    self.assertFalse(result["at_start"])


if __name__ == "__main__":
  tf.test.main()
