"""Tests of model_adapter.ModelAdapter on variable-based models."""

from tests import test_util  # pylint: disable=unused-import

import numpy as np
import tensorflow.compat.v1 as tf

from problems import model_adapter
from problems import problem_generator as pg


def _direct_variable_model():
  """A loss built with tf.Variable directly: sum((w - 3)^2) * scale."""

  def make_loss():
    w = tf.Variable(tf.zeros([3]), name="w")
    scale = tf.Variable(2.0, trainable=False, name="scale")
    return tf.reduce_sum(tf.square(w - 3.0)) * scale

  return make_loss, None


class ModelAdapterTest(tf.test.TestCase):

  def test_discovers_parameters_and_constants(self):
    adapter = model_adapter.ModelAdapter(pg.make_rosenbrock_loss_and_init)
    self.assertEqual([v.op.name for v in adapter.parameters], ["x", "y"])
    self.assertEqual([v.op.name for v in adapter.constants], ["c"])
    self.assertEqual(adapter.param_shapes, [])
    self.assertEqual(adapter.num_params, 0)

  def test_model_variables_stay_out_of_checkpointed_collections(self):
    adapter = model_adapter.ModelAdapter(pg.make_rosenbrock_loss_and_init)
    self.assertEmpty(tf.trainable_variables())
    self.assertEmpty(tf.global_variables())
    self.assertLen(tf.local_variables(), 3)
    self.assertIs(adapter.init_tensors(), adapter.parameters)

  def test_objective_uses_supplied_tensors_and_kept_constants(self):
    adapter = model_adapter.ModelAdapter(pg.make_rosenbrock_loss_and_init)
    x = tf.placeholder(tf.float32, [1])
    y = tf.placeholder(tf.float32, [1])
    objective = adapter.objective([x, y])
    grads = tf.gradients(objective, [x, y])
    with self.cached_session() as sess:
      adapter.init_fn(sess)
      self.assertAllClose(sess.run(adapter.constants[0]), [100.])
      value, (gx, gy) = sess.run([objective, grads],
                                 {x: [0.5], y: [2.0]})
    self.assertAllClose(value, 0.25 + 100 * (2.0 - 0.25)**2, rtol=1e-6)
    self.assertAllClose(gx, [-2 * 0.5 - 400 * 0.5 * (2.0 - 0.25)], rtol=1e-5)
    self.assertAllClose(gy, [200 * (2.0 - 0.25)], rtol=1e-5)

  def test_objective_at_its_own_variables_reads_their_values(self):
    adapter = model_adapter.ModelAdapter(pg.make_rosenbrock_loss_and_init)
    objective = adapter.objective(adapter.parameters)
    with self.cached_session() as sess:
      adapter.init_fn(sess)
      x, y = sess.run(adapter.parameters)
      self.assertAllClose(sess.run(objective),
                          (1 - x[0])**2 + 100 * (y[0] - x[0]**2)**2,
                          rtol=1e-5)

  def test_direct_tf_variables_are_replaced_in_creation_order(self):
    adapter = model_adapter.ModelAdapter(_direct_variable_model)
    self.assertLen(adapter.parameters, 1)
    self.assertLen(adapter.constants, 1)
    w = tf.constant([1.0, 2.0, 5.0])
    objective = adapter.objective([w])
    with self.cached_session() as sess:
      adapter.init_fn(sess)
      self.assertAllClose(sess.run(objective), 2.0 * (4 + 1 + 4))

  def test_wrong_number_of_parameters_is_rejected(self):
    adapter = model_adapter.ModelAdapter(pg.make_rosenbrock_loss_and_init)
    with self.assertRaisesRegex(ValueError, "expects 2 parameters"):
      adapter.objective([tf.zeros([1])])


if __name__ == "__main__":
  tf.test.main()
