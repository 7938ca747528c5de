"""Tests of TrainableAdam against a numpy Adam written from the formulas."""

from tests import test_util  # pylint: disable=unused-import

import numpy as np
import tensorflow.compat.v1 as tf

from meta_training import unroll as unroll_lib
from optimizer import trainable_adam
from problems import problem_generator as pg


class NumpyAdam(object):
  """Adam with TrainableAdam's details (1e-10 terms), in float64.

  With `frozen` the second moment follows the original's written form
  v / (1 - (g^2)^beta2).
  """

  def __init__(self, lr, beta1, beta2, epsilon, frozen=False):
    self.lr, self.beta1, self.beta2 = lr, beta1, beta2
    self.epsilon = epsilon + 1e-10
    self.frozen = frozen
    self.m = self.v = self.t = 0.

  def step(self, g):
    """Returns the step for gradient `g` (new x = x - step)."""
    self.t = self.t + 1.
    self.m = self.beta1 * self.m + (1 - self.beta1) * g
    if self.frozen:
      self.v = self.v / (1 - (g**2)**self.beta2)
    else:
      self.v = self.beta2 * self.v + (1 - self.beta2) * g**2
    m_hat = self.m / (1 - self.beta1**self.t)
    v_hat = self.v / (1 - self.beta2**self.t)
    return self.lr * m_hat / (np.sqrt(v_hat + 1e-10) + self.epsilon)


def _quadratic(seed=0):
  rng = np.random.RandomState(seed)
  a, b = rng.randn(4, 4), rng.randn(4, 1)
  return a, b, lambda x: a.T.dot(a.dot(x) - b)


def _tf_quadratic_loss(a, b, var):
  residual = tf.matmul(a.astype(np.float32), var) - b.astype(np.float32)
  return 0.5 * tf.reduce_sum(tf.square(residual))


class ConstructorTest(tf.test.TestCase):

  def test_meta_variables_hold_log_and_logit_values(self):
    trainable_adam.TrainableAdam(learning_rate=0.01, beta1=0.8, beta2=0.99,
                                 epsilon=1e-6)
    variables = {v.op.name: v for v in tf.global_variables()}
    self.assertEqual(sorted(variables),
                     ["LOL/beta1_logit", "LOL/beta2_logit", "LOL/log_epsilon",
                      "LOL/log_learning_rate"])
    for v in variables.values():
      self.assertEqual(v.get_shape().as_list(), [])
    self.evaluate(tf.global_variables_initializer())
    values = {name: self.evaluate(v) for name, v in variables.items()}
    self.assertAllClose(values["LOL/log_learning_rate"], np.log(0.01))
    self.assertAllClose(values["LOL/beta1_logit"], np.log(0.8 / 0.2))
    self.assertAllClose(values["LOL/beta2_logit"], np.log(0.99 / 0.01))
    self.assertAllClose(values["LOL/log_epsilon"], np.log(1e-6))

  def test_invalid_arguments_raise_value_error(self):
    for kwargs in ({"learning_rate": 0.}, {"learning_rate": -1e-3},
                   {"epsilon": 0.}, {"beta1": 0.}, {"beta1": 1.},
                   {"beta2": 1.}, {"beta2": 1.5}, {"beta2": -0.1}):
      with self.assertRaises(ValueError, msg=str(kwargs)):
        trainable_adam.TrainableAdam(**kwargs)

  def test_unknown_options_are_rejected(self):
    with self.assertRaises(TypeError):
      trainable_adam.TrainableAdam(cell_cls="GRUCell")

  def test_state_is_m_t_v_columns(self):
    optimizer = trainable_adam.TrainableAdam()
    self.assertEqual(optimizer.state_keys, ["m", "t", "v"])
    state = optimizer._initialize_state(tf.zeros([3, 2]))
    for key in ("m", "t", "v"):
      self.assertEqual(state[key].dtype, tf.float32)
      self.assertAllEqual(self.evaluate(state[key]), np.zeros([6, 1]))


class ApplyModeTest(tf.test.TestCase):

  def _run_quadratic(self, steps, lr, beta1, beta2, epsilon, frozen):
    a, b, grad = _quadratic()
    x = np.random.RandomState(1).randn(4, 1)
    var = tf.Variable(x.astype(np.float32))
    optimizer = trainable_adam.TrainableAdam(
        lr, beta1, beta2, epsilon, frozen_second_moment=frozen)
    update = optimizer.minimize(_tf_quadratic_loss(a, b, var))
    reference = NumpyAdam(lr, beta1, beta2, epsilon, frozen=frozen)
    with self.cached_session() as sess:
      sess.run(tf.global_variables_initializer())
      for _ in range(steps):
        sess.run(update)
        x = x - reference.step(grad(x))
        self.assertAllClose(sess.run(var), x, rtol=1e-5, atol=1e-6)
      return sess.run(optimizer.get_slot(var, "v")), reference

  def test_matches_numpy_adam_for_twenty_steps(self):
    v, reference = self._run_quadratic(20, lr=0.05, beta1=0.8, beta2=0.9,
                                       epsilon=1e-8, frozen=False)
    self.assertAllClose(v, reference.v, rtol=1e-4)
    self.assertTrue(np.all(v > 0))

  def test_matches_numpy_adam_with_default_betas(self):
    self._run_quadratic(20, lr=0.01, beta1=0.9, beta2=0.999, epsilon=1e-8,
                        frozen=False)

  def test_frozen_second_moment_reproduces_the_original(self):
    # v stays 0, so the step is lr m_hat / (1e-5 + eps): a tiny lr.
    v, _ = self._run_quadratic(5, lr=1e-7, beta1=0.9, beta2=0.999,
                               epsilon=1e-8, frozen=True)
    self.assertAllEqual(v, np.zeros([4, 1]))

  def test_frozen_second_moment_is_nan_where_the_gradient_is_one(self):
    var = tf.Variable([0., 0.])
    optimizer = trainable_adam.TrainableAdam(frozen_second_moment=True)
    update = optimizer.minimize(tf.reduce_sum(var * [1., 0.5]))
    with self.cached_session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(update)
      v = sess.run(optimizer.get_slot(var, "v"))
    self.assertTrue(np.isnan(v[0, 0]))
    self.assertEqual(v[1, 0], 0.)

  def test_matrix_parameters_keep_their_shape(self):
    g = np.array([[1., -2., 3.], [0.5, 0.25, -4.]], np.float32)
    var = tf.Variable(np.zeros([2, 3], np.float32))
    update = trainable_adam.TrainableAdam(0.1).minimize(
        tf.reduce_sum(g * var))
    reference = NumpyAdam(0.1, 0.9, 0.999, 1e-8)
    x = np.zeros([2, 3])
    with self.cached_session() as sess:
      sess.run(tf.global_variables_initializer())
      for _ in range(3):
        sess.run(update)
        x = x - reference.step(g.astype(np.float64))
      self.assertAllClose(sess.run(var), x, rtol=1e-5)


class SparseGradientTest(tf.test.TestCase):

  def _check_sparse_matches_dense(self, use_resource):
    sparse_var, dense_var, sparse_loss, dense_loss, x0 = (
        test_util.sparse_and_dense_losses(use_resource))
    self.assertIsInstance(tf.gradients(sparse_loss, sparse_var)[0],
                          tf.IndexedSlices)
    optimizer = trainable_adam.TrainableAdam(0.1)
    update = tf.group(optimizer.minimize(sparse_loss, var_list=[sparse_var]),
                      optimizer.minimize(dense_loss, var_list=[dense_var]))
    with self.cached_session() as sess:
      sess.run(tf.global_variables_initializer())
      for _ in range(4):
        sess.run(update)
      sparse, dense, t = sess.run([sparse_var, dense_var,
                                   optimizer.get_slot(sparse_var, "t")])
    touched = [0, 3]
    untouched = [1, 2, 4]
    self.assertAllClose(sparse[touched], dense[touched], rtol=1e-5)
    self.assertGreater(np.abs(sparse[touched] - x0[touched]).min(), 1e-3)
    self.assertAllEqual(sparse[untouched], x0[untouched])
    self.assertAllEqual(t.reshape(5, 2), [[4, 4], [0, 0], [0, 0], [4, 4],
                                          [0, 0]])

  def test_sparse_gradients_update_only_touched_rows(self):
    self._check_sparse_matches_dense(use_resource=False)

  def test_sparse_gradients_of_resource_variables(self):
    self._check_sparse_matches_dense(use_resource=True)


class TrainModeTest(tf.test.TestCase):

  def _meta_gradients(self, **kwargs):
    problem = pg.Quadratic(3, random_seed=2)
    optimizer = trainable_adam.TrainableAdam(0.05, epsilon=1e-3, **kwargs)
    out = unroll_lib.build_unroll(optimizer, problem)
    variables = tf.trainable_variables("LOL")
    grads = tf.gradients(out.meta_objective, variables)
    feed = {out.objective_weights: np.ones(4) / 4, out.first_unroll: True,
            out.reset_state: True,
            out.initial_params[0]: np.ones([3, 1], np.float32)}
    with self.cached_session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      metaobj, grads = sess.run([out.meta_objective, grads], feed)
    return metaobj, {v.op.name: g for v, g in zip(variables, grads)}

  def test_meta_gradients_reach_every_meta_variable(self):
    metaobj, grads = self._meta_gradients()
    self.assertTrue(np.isfinite(metaobj))
    self.assertLen(grads, 4)
    for name, grad in grads.items():
      self.assertTrue(np.isfinite(grad), msg=name)
      self.assertNotEqual(grad, 0., msg=name)

  def test_frozen_second_moment_cuts_beta2_off(self):
    metaobj, grads = self._meta_gradients(frozen_second_moment=True)
    self.assertTrue(np.isfinite(metaobj))
    self.assertEqual(grads["LOL/beta2_logit"], 0.)


if __name__ == "__main__":
  tf.test.main()
