"""Tests of evaluation.baselines: defaults and update rules against numpy."""

from tests import test_util

from absl.testing import parameterized
import numpy as np
import tensorflow.compat.v1 as tf

from evaluation import baselines

CENTER = np.array([1., -2., 0.5])
START = np.array([0.3, 0.1, -0.4])


def numpy_steps(name, rate, steps):
  """The baseline's iterates on f(w) = ||w - CENTER||^2 / 2 (grad w - c)."""
  w = START.copy()
  m = v = momentum = np.zeros(3)
  accumulator = np.full(3, 0.1)
  mean_square = np.ones(3)
  for t in range(1, steps + 1):
    g = w - CENTER
    if name == "SGD":
      w = w - rate * g
    elif name == "Adam":
      m = 0.9 * m + 0.1 * g
      v = 0.999 * v + 0.001 * g * g
      step_rate = rate * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
      w = w - step_rate * m / (np.sqrt(v) + 1e-8)
    elif name == "Adagrad":
      accumulator = accumulator + g * g
      w = w - rate * g / np.sqrt(accumulator)
    elif name == "RMSProp":
      mean_square = 0.9 * mean_square + 0.1 * g * g
      w = w - rate * g / np.sqrt(mean_square + 1e-10)
    elif name == "Momentum":
      momentum = 0.9 * momentum + g
      w = w - rate * momentum
  return w


class BaselinesTest(test_util.TestCase, parameterized.TestCase):

  def test_the_original_learning_rates_are_the_defaults(self):
    self.assertEqual(baselines.BASELINES["SGD"].learning_rate, 1e-3)
    self.assertEqual(baselines.BASELINES["Adam"].learning_rate, 1e-4)
    self.assertEqual(baselines.BASELINES["Adagrad"].learning_rate, 1e-5)
    self.assertEqual(baselines.NAMES,
                     ("SGD", "Adam", "Adagrad", "RMSProp", "Momentum"))

  @parameterized.parameters(*baselines.NAMES)
  def test_steps_match_numpy(self, name):
    with tf.Graph().as_default():
      w = tf.Variable(START.astype(np.float32))
      loss = 0.5 * tf.reduce_sum(tf.square(w - CENTER.astype(np.float32)))
      train_op = baselines.make_baseline(name, 0.05)().minimize(loss)
      with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(4):
          sess.run(train_op)
        self.assertAllClose(sess.run(w), numpy_steps(name, 0.05, 4),
                            rtol=1e-5, atol=1e-6)

  def test_default_rate_is_used_without_one(self):
    with tf.Graph().as_default():
      optimizer = baselines.make_baseline("Adagrad")()
      self.assertEqual(optimizer._learning_rate, 1e-5)  # pylint: disable=protected-access

  def test_bad_names_and_rates_are_rejected(self):
    with self.assertRaisesRegex(ValueError, "unknown baseline optimizer"):
      baselines.make_baseline("Lion")
    with self.assertRaisesRegex(ValueError, "must be positive"):
      baselines.make_baseline("SGD", 0.)


if __name__ == "__main__":
  tf.test.main()
