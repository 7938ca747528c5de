"""Tests that LearningRateSchedule follows its schedule exactly."""

from tests import test_util  # pylint: disable=unused-import

import numpy as np
import tensorflow.compat.v1 as tf

from meta_training import unroll as unroll_lib
from optimizer import learning_rate_schedule
from problems import problem_generator as pg

_RATES = np.array([0.5, 0.25, 0.125, 2.0], np.float32)


class LearningRateScheduleTest(tf.test.TestCase):

  def _build(self, **kwargs):
    """A linear loss g . x (constant gradient g) and its update op."""
    self.g = np.array([[1.], [-2.], [3.]], np.float32)
    self.var = tf.Variable(np.zeros([3, 1], np.float32))
    loss = tf.reduce_sum(self.g * self.var)
    self.optimizer = learning_rate_schedule.LearningRateSchedule(**kwargs)
    return self.optimizer.minimize(loss)

  def test_creates_the_rates_variable(self):
    learning_rate_schedule.LearningRateSchedule(initial_rate=0.1, n_steps=7)
    [variable] = tf.global_variables()
    self.assertEqual(variable.op.name, "LOL/learning_rates")
    self.evaluate(tf.global_variables_initializer())
    self.assertAllClose(self.evaluate(variable), np.full(7, 0.1))

  def test_steps_use_rate_t_and_then_the_last_rate(self):
    step = self._build(n_steps=len(_RATES))
    itr = self.optimizer.get_slot(self.var, "itr")
    with self.cached_session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(tf.assign(self.optimizer.learning_rates, _RATES))
      x = np.zeros([3, 1], np.float32)
      for t in range(7):
        before = sess.run(self.var)
        sess.run(step)
        rate = _RATES[min(t, len(_RATES) - 1)]
        self.assertAllClose(sess.run(self.var) - before, -rate * self.g,
                            rtol=1e-6)
        x = x - rate * self.g
        self.assertEqual(sess.run(itr), t + 1)
      self.assertAllClose(sess.run(self.var), x, rtol=1e-6)

  def test_default_initial_rate_leaves_parameters_unchanged(self):
    step = self._build()
    with self.cached_session() as sess:
      sess.run(tf.global_variables_initializer())
      for _ in range(3):
        sess.run(step)
      self.assertAllEqual(sess.run(self.var), np.zeros([3, 1]))

  def test_construction_adds_only_the_rates_variable_to_the_graph(self):
    learning_rate_schedule.LearningRateSchedule(0.5, n_steps=2)
    names = [op.name for op in tf.get_default_graph().get_operations()]
    self.assertTrue(names)
    for name in names:
      self.assertStartsWith(name, "LOL/learning_rates")

  def test_meta_gradient_reaches_the_rates_of_the_steps_taken(self):
    problem = pg.Quadratic(3, random_seed=1)
    optimizer = learning_rate_schedule.LearningRateSchedule(0.01, n_steps=5)
    out = unroll_lib.build_unroll(optimizer, problem)
    meta_grad = tf.convert_to_tensor(
        tf.gradients(out.meta_objective, [optimizer.learning_rates])[0])
    feed = {out.objective_weights: np.ones(3) / 3, out.first_unroll: True,
            out.reset_state: True,
            out.initial_params[0]: np.ones([3, 1], np.float32)}
    with self.cached_session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      metaobj, meta_grad = sess.run([out.meta_objective, meta_grad], feed)
    self.assertTrue(np.isfinite(metaobj))
    # Three steps score F_0..F_2: rates 0 and 1 matter, 2 onwards do not.
    self.assertTrue(np.all(meta_grad[:2] != 0))
    self.assertAllEqual(meta_grad[2:], np.zeros(3))


if __name__ == "__main__":
  tf.test.main()
