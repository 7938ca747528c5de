"""Tests of the TrainableOptimizer base: meta-parameter values and helpers."""

from tests import test_util

import numpy as np
import tensorflow.compat.v1 as tf

from optimizer import global_learning_rate
from optimizer import trainable_optimizer as opt


class ApplyModeTest(tf.test.TestCase):

  def test_minimize_returns_an_op_usable_in_group(self):
    optimizer = global_learning_rate.GlobalLearningRate(0.1)
    x = tf.Variable([1.0, -2.0])
    step = optimizer.minimize(tf.reduce_sum(tf.square(x)), var_list=[x])
    self.assertIsInstance(step, tf.Operation)
    with self.cached_session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(tf.group(step))
      self.assertAllClose(sess.run(x), [0.8, -1.6])

  def test_unknown_options_are_rejected(self):
    with self.assertRaises(TypeError):
      global_learning_rate.GlobalLearningRate(0.1, cell_cls="GRUCell")


class MetaParameterValuesTest(tf.test.TestCase):

  def test_reads_are_the_variables_outside_a_block(self):
    optimizer = global_learning_rate.GlobalLearningRate(0.5)
    self.assertIs(optimizer.meta(optimizer.learning_rate),
                  optimizer.learning_rate)
    constant = tf.constant(1.)
    self.assertIs(optimizer.meta(constant), constant)

  def test_reads_inside_a_block_are_the_given_values(self):
    optimizer = global_learning_rate.GlobalLearningRate(0.5)
    value = tf.constant(0.25)
    with optimizer.meta_parameters_at({"LOL/global_learning_rate": value}):
      self.assertIs(optimizer.meta(optimizer.learning_rate), value)
      with optimizer.reading_scope():
        self.assertIs(tf.get_variable("global_learning_rate"), value)
    self.assertIs(optimizer.meta(optimizer.learning_rate),
                  optimizer.learning_rate)
    step = optimizer._compute_update(tf.constant([2.]), tf.constant([4.]),  # pylint: disable=protected-access
                                     {})[0]
    with optimizer.meta_parameters_at({"LOL/global_learning_rate": value}):
      moved = optimizer._compute_update(tf.constant([2.]), tf.constant([4.]),  # pylint: disable=protected-access
                                        {})[0]
    self.evaluate(tf.global_variables_initializer())
    self.assertAllClose(self.evaluate([step, moved]), [[0.], [1.]])

  def test_blocks_do_not_nest(self):
    optimizer = global_learning_rate.GlobalLearningRate()
    with optimizer.meta_parameters_at({}):
      with self.assertRaisesRegex(ValueError, "do not nest"):
        with optimizer.meta_parameters_at({}):
          pass

  def test_flatten_and_sort_orders_by_key(self):
    self.assertEqual(opt.flatten_and_sort({"b": 2, "a": 1, "c": 3}),
                     [1, 2, 3])
    self.assertEqual(np.asarray(opt.flatten_and_sort({})).size, 0)


if __name__ == "__main__":
  tf.test.main()
