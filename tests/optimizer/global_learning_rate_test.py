"""Tests of GlobalLearningRate against plain numpy gradient descent."""

from tests import test_util  # pylint: disable=unused-import

import numpy as np
import tensorflow.compat.v1 as tf

from meta_training import unroll as unroll_lib
from optimizer import global_learning_rate
from problems import problem_generator as pg


def _quadratic(ndim=3, seed=0):
  """A float64 numpy quadratic 1/2 ||A x - b||^2 and its gradient."""
  rng = np.random.RandomState(seed)
  a, b = rng.randn(ndim, ndim), rng.randn(ndim, 1)
  value = lambda x: 0.5 * np.sum((a.dot(x) - b)**2)
  grad = lambda x: a.T.dot(a.dot(x) - b)
  return a, b, value, grad


class ApplyModeTest(tf.test.TestCase):

  def test_creates_one_scalar_learning_rate(self):
    global_learning_rate.GlobalLearningRate(0.25)
    [variable] = tf.global_variables()
    self.assertEqual(variable.op.name, "LOL/global_learning_rate")
    self.assertEqual(variable.get_shape().as_list(), [])
    self.evaluate(tf.global_variables_initializer())
    self.assertAllClose(self.evaluate(variable), 0.25)

  def test_matches_numpy_gradient_descent_for_twenty_steps(self):
    a, b, _, grad = _quadratic()
    x = np.random.RandomState(1).randn(3, 1)
    var = tf.Variable(x.astype(np.float32))
    loss = 0.5 * tf.reduce_sum(tf.square(tf.matmul(a.astype(np.float32), var)
                                         - b.astype(np.float32)))
    step = global_learning_rate.GlobalLearningRate(0.05).minimize(loss)
    with self.cached_session() as sess:
      sess.run(tf.global_variables_initializer())
      for _ in range(20):
        sess.run(step)
        x = x - 0.05 * grad(x)
        self.assertAllClose(sess.run(var), x, rtol=1e-5, atol=1e-6)

  def test_sparse_gradients_move_only_the_gathered_rows(self):
    var = tf.Variable(np.ones([4, 2], np.float32))
    loss = tf.reduce_sum(tf.gather(var, [2, 0, 2]))
    step = global_learning_rate.GlobalLearningRate(0.5).minimize(loss)
    with self.cached_session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(step)
      self.assertAllClose(sess.run(var),
                          [[0.5, 0.5], [1., 1.], [0., 0.], [1., 1.]])

  def test_unknown_options_are_rejected(self):
    with self.assertRaises(TypeError):
      global_learning_rate.GlobalLearningRate(0.1, cell_cls="GRUCell")


class TrainModeTest(tf.test.TestCase):

  def test_inner_trajectory_is_numpy_gradient_descent(self):
    steps, lr = 6, 0.03
    problem = pg.Quadratic(3, random_seed=5)
    w, y = problem.w.astype(np.float64), problem.y.astype(np.float64)
    value = lambda x: 0.5 * np.sum((w.dot(x) - y)**2)
    grad = lambda x: w.T.dot(w.dot(x) - y)
    out = unroll_lib.build_unroll(
        global_learning_rate.GlobalLearningRate(lr), problem)
    x = np.random.RandomState(2).randn(3, 1)
    feed = {out.objective_weights: np.ones(steps) / steps, out.first_unroll: True,
            out.reset_state: True, out.initial_params[0]: x.astype(np.float32)}
    with self.cached_session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      objectives, final = sess.run(
          [out.problem_objectives, out.carried_values[1]], feed)
    expected = [value(x)]
    for _ in range(steps):
      expected.append(value(x))
      x = x - lr * grad(x)
    self.assertAllClose(objectives, expected, rtol=1e-5)
    self.assertAllClose(final, x, rtol=1e-5, atol=1e-6)


if __name__ == "__main__":
  tf.test.main()
