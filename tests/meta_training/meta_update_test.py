"""Tests of meta_training/estimators/meta_update.py and the bounded
meta-loss: each option against a numpy computation of its definition."""

from tests import test_util  # pylint: disable=unused-import

import math
import types

import numpy as np
import tensorflow.compat.v1 as tf

from meta_training import config
from meta_training import unroll as unroll_lib
from meta_training.estimators import meta_update


def _settings(**overrides):
  return config.MetaOptimizer(**overrides)


class LearningRateTest(tf.test.TestCase):

  def test_the_default_is_the_constant_rate(self):
    self.assertEqual(meta_update.learning_rate(
        _settings(learning_rate=1e-3), tf.constant(0, tf.int64)), 1e-3)

  def _rates(self, settings, steps):
    step = tf.placeholder(tf.int64, [])
    rate = meta_update.learning_rate(settings, step)
    with self.session() as sess:
      return [sess.run(rate, {step: s}) for s in steps]

  def test_warm_up_then_cosine(self):
    base, warm, decay = 2e-3, 4, 10
    steps = list(range(20))
    rates = self._rates(_settings(learning_rate=base, warmup_steps=warm,
                                  decay="cosine", decay_steps=decay), steps)
    # Update k (global step k before it) uses min(1, (k + 1) / warm) of the
    # rate, times the cosine of the fraction of the decay done after it.
    expected = [base * min(1., (k + 1.) / warm) *
                0.5 * (1 + math.cos(math.pi * min(max(k - warm, 0) / decay,
                                                  1.)))
                for k in steps]
    self.assertAllClose(rates, expected, rtol=1e-6, atol=0)
    self.assertEqual(rates[-1], 0.)

  def test_warm_up_alone_then_constant(self):
    rates = self._rates(_settings(learning_rate=1., warmup_steps=3),
                        [0, 1, 2, 3, 50])
    self.assertAllClose(rates, [1 / 3., 2 / 3., 1., 1., 1.])


class OptimizerTest(tf.test.TestCase):

  def _steps(self, settings, gradients):
    var = tf.Variable(np.array([1., -2.], np.float32))
    step = tf.train.get_or_create_global_step()
    grad = tf.placeholder(tf.float32, [2])
    optimizer = meta_update.optimizer(settings, step)
    op = optimizer.apply_gradients([(grad, var)], global_step=step)
    with self.session() as sess:
      sess.run(tf.global_variables_initializer())
      values = []
      for g in gradients:
        sess.run(op, {grad: g})
        values.append(sess.run(var))
    return optimizer, values

  def test_the_default_is_tf1_rmsprop_with_its_slot_at_one(self):
    gradients = [np.array([0.5, -1.], np.float32)] * 3
    optimizer, values = self._steps(
        _settings(learning_rate=0.1, rms_decay=0.9, rms_epsilon=1e-10),
        gradients)
    self.assertIsInstance(optimizer, tf.train.RMSPropOptimizer)
    theta, ms = np.array([1., -2.]), np.ones(2)
    for g, value in zip(gradients, values):
      ms = 0.9 * ms + 0.1 * g ** 2
      theta = theta - 0.1 * g / np.sqrt(ms + 1e-10)
      self.assertAllClose(value, theta, rtol=1e-5)

  def test_adam_with_its_settings(self):
    rng = np.random.RandomState(0)
    gradients = [rng.randn(2).astype(np.float32) for _ in range(4)]
    b1, b2, eps, lr = 0.8, 0.99, 1e-6, 0.05
    _, values = self._steps(
        _settings(meta_optimizer="adam", learning_rate=lr, adam_beta1=b1,
                  adam_beta2=b2, adam_epsilon=eps), gradients)
    theta, m, v = np.array([1., -2.]), np.zeros(2), np.zeros(2)
    for t, (g, value) in enumerate(zip(gradients, values), 1):
      m = b1 * m + (1 - b1) * g
      v = b2 * v + (1 - b2) * g ** 2
      # TF1 Adam: epsilon added to sqrt(v) before the bias correction of
      # the rate ("epsilon hat").
      rate = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
      theta = theta - rate * m / (np.sqrt(v) + eps)
      self.assertAllClose(value, theta, rtol=1e-5)


class ClipTest(tf.test.TestCase):

  def test_non_finite_zeroed_then_by_value_then_by_global_norm(self):
    raw = [np.array([np.nan, 3., -7.], np.float32),
           np.array([[np.inf, 0.5]], np.float32)]
    settings = _settings(gradient_clip=4., gradient_clip_norm=2.)
    by_value = [np.array([0., 3., -4.]), np.array([[0., 0.5]])]
    norm = math.sqrt(sum(np.sum(g ** 2) for g in by_value))
    with self.session() as sess:
      clipped = sess.run(meta_update.clip(raw, settings))
      unclipped_norm = sess.run(meta_update.clip(
          raw, _settings(gradient_clip=4.)))
    for got, want in zip(clipped, by_value):
      self.assertAllClose(got, want * 2. / norm)
    for got, want in zip(unclipped_norm, by_value):
      self.assertAllClose(got, want)


class SkippedUpdateTest(tf.test.TestCase):

  def test_a_non_finite_estimate_is_skipped_and_counted(self):
    settings = _settings(learning_rate=0.1, loss_ceiling=3.)
    var = tf.Variable(np.array([1., 2.], np.float32))
    step = tf.train.get_or_create_global_step()
    raw = tf.placeholder(tf.float32, [2])
    optimizer = meta_update.optimizer(settings, step)
    op = meta_update.apply(optimizer, [raw], meta_update.clip([raw], settings),
                           [var], step, settings)
    counter = meta_update.skipped_counter()
    with self.session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(op, {raw: [np.nan, 1.]})
      self.assertAllEqual(sess.run(var), [1., 2.])
      self.assertEqual(sess.run([counter, step]), [1, 1])
      sess.run(op, {raw: [0.5, 1.]})
      # RMSProp's first step from a slot at 1: lr g / sqrt(0.9 + 0.1 g^2).
      g = np.array([0.5, 1.])
      self.assertAllClose(sess.run(var),
                          [1., 2.] - 0.1 * g / np.sqrt(0.9 + 0.1 * g ** 2))
      self.assertEqual(sess.run([counter, step]), [1, 2])


class BoundedObjectiveTest(tf.test.TestCase):

  def _bounded(self, cfg, objectives, initial, weights, ceiling):
    with self.session() as sess:
      return sess.run(unroll_lib.scale_objective(
          cfg, tf.constant(0.), tf.constant(objectives, tf.float32),
          tf.constant(initial, tf.float32), ceiling=ceiling,
          weights=tf.constant(weights, tf.float32)))

  def test_weighted_ratios_clipped_and_non_finite_at_the_ceiling(self):
    cfg = types.SimpleNamespace(use_log_objective=False, use_numerator_epsilon=False)
    objectives = [2., 1., 5., np.nan, np.inf]
    weights = [0.1, 0.2, 0.3, 0.4]
    ratios = np.minimum(np.array([1., 5., 8., 8.]) / (2. + 1e-6), 2.)
    ratios[2:] = 2.
    self.assertAllClose(self._bounded(cfg, objectives, 2., weights, 2.),
                        np.dot(weights, ratios))

  def test_steps_a_stopped_unroll_missed_count_as_the_ceiling(self):
    cfg = types.SimpleNamespace(use_log_objective=True, use_numerator_epsilon=True)
    objectives = [4., 2., 1.]  # two of four steps reached
    eps = 1e-6
    ratios = [(4. + eps) / (4. + eps), (2. + eps) / (4. + eps),
              (1. + eps) / (4. + eps), 3., 3.]
    self.assertAllClose(
        self._bounded(cfg, objectives, 4., [0.25] * 4, 3.),
        np.mean(np.log(ratios)), rtol=1e-5)

  def test_below_the_ceiling_it_equals_the_unbounded_objective(self):
    cfg = types.SimpleNamespace(use_log_objective=True, use_numerator_epsilon=False)
    objectives = np.array([3., 2., 1.5], np.float32)
    with self.session() as sess:
      unbounded = sess.run(unroll_lib.scale_objective(
          cfg, tf.constant(0.), tf.constant(objectives), tf.constant(3.)))
    self.assertAllClose(self._bounded(cfg, objectives, 3., [0.5, 0.5], 10.),
                        unbounded)


if __name__ == "__main__":
  tf.test.main()
