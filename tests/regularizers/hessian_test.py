"""Tests of the curvature estimators against exactly computed Hessians."""

from tests import test_util

import numpy as np
import tensorflow.compat.v1 as tf

from problems import problem_generator as pg
from regularizers import hessian
from regularizers import jacobian
from regularizers import registry


def _quadratic_case(ndim=6, seed=0):
  """A quadratic with its exact Hessian W^T W (numpy)."""
  problem = pg.Quadratic(ndim, random_seed=seed)
  x = tf.constant(np.random.RandomState(seed).randn(ndim, 1), tf.float32)
  params = [x]
  loss = problem.objective(params)
  exact = problem.w.T.dot(problem.w).astype(np.float64)
  return loss, params, exact


def _exact_hessian(loss, params, sess):
  """The full Hessian of `loss` over all parameters, from tf.hessians."""
  sizes = [int(np.prod(p.get_shape().as_list())) for p in params]
  flat = tf.concat([tf.reshape(p, [-1]) for p in params], 0)
  blocks = []
  grads = tf.gradients(loss, params)
  flat_grad = tf.concat([tf.reshape(g, [-1]) for g in grads], 0)
  for i in range(sum(sizes)):
    row = tf.gradients(flat_grad[i], params)
    blocks.append(tf.concat([tf.reshape(r, [-1]) for r in row], 0))
  del flat
  return sess.run(tf.stack(blocks)).astype(np.float64)


def _classifier_case(problem, n_samples=12, seed=0):
  rng = np.random.RandomState(seed)
  n_features = problem.param_shapes[0][0]
  data = tf.constant(rng.randn(n_samples, n_features), tf.float32)
  labels = tf.constant(rng.randint(0, 3, n_samples), tf.int32)
  params = [tf.constant(0.3 * rng.randn(*shape), tf.float32)
            for shape in problem.param_shapes]
  return problem.objective(params, data, labels), params


class HessianVectorProductTest(tf.test.TestCase):

  def test_products_match_the_exact_hessian(self):
    loss, params, exact = _quadratic_case()
    grads = tf.gradients(loss, params)
    v = np.random.RandomState(1).randn(6, 1)
    hv = hessian.hessian_vector_product(grads, params,
                                        [tf.constant(v, tf.float32)])
    self.assertAllClose(self.evaluate(hv[0]), exact.dot(v), rtol=1e-4)

  def test_tf_hessians_agree_for_a_softmax_regression(self):
    problem = pg.SoftmaxRegression(3, 3, random_seed=0)
    loss, params = _classifier_case(problem)
    with self.cached_session() as sess:
      exact = _exact_hessian(loss, params, sess)
      block = sess.run(tf.hessians(loss, params[1])[0])
    # The bias block of the full Hessian is tf.hessians' answer.
    self.assertAllClose(exact[9:, 9:], block, rtol=1e-4, atol=1e-6)


class HutchinsonTest(tf.test.TestCase):

  def test_mean_over_many_probes_approaches_the_trace(self):
    loss, params, exact = _quadratic_case()
    grads = tf.gradients(loss, params)
    estimate = hessian.hutchinson_trace(grads, params, num_probes=10, seed=1)
    with self.cached_session() as sess:
      values = [sess.run(estimate) for _ in range(300)]
    # 3000 probes: the standard error is about 2% of the trace here.
    self.assertAllClose(np.mean(values), np.trace(exact), rtol=0.06)
    self.assertGreater(np.std(values), 0)  # fresh probes on every run

  def test_fixed_probes_repeat_and_are_exact_per_probe(self):
    loss, params, exact = _quadratic_case()
    grads = tf.gradients(loss, params)
    estimate = hessian.hutchinson_trace(grads, params, num_probes=3, seed=4,
                                        fixed_probes=True)
    rng = np.random.RandomState(4)
    probes = [2. * rng.randint(0, 2, (6, 1)) - 1. for _ in range(3)]
    expected = np.mean([z.T.dot(exact).dot(z).item() for z in probes])
    with self.cached_session() as sess:
      first, second = sess.run(estimate), sess.run(estimate)
    self.assertEqual(first, second)
    self.assertAllClose(first, expected, rtol=1e-4)

  def test_trace_of_a_tiny_mlp(self):
    problem = pg.FullyConnected(3, 3, hidden_sizes=(2,), random_seed=0)
    loss, params = _classifier_case(problem, seed=2)
    grads = tf.gradients(loss, params)
    estimate = hessian.hutchinson_trace(grads, params, num_probes=20)
    with self.cached_session() as sess:
      exact = _exact_hessian(loss, params, sess)
      values = [sess.run(estimate) for _ in range(200)]
    self.assertAllClose(np.mean(values), np.trace(exact), rtol=0.1,
                        atol=0.02)


class PowerIterationTest(tf.test.TestCase):

  def test_top_eigenvalue_to_one_in_a_thousand(self):
    loss, params, exact = _quadratic_case()
    grads = tf.gradients(loss, params)
    value = hessian.top_eigenvalue_sum(grads, params, num_iters=100, seed=0)
    eigenvalues = np.linalg.eigvalsh(exact)
    self.assertAllClose(self.evaluate(value), eigenvalues[-1], rtol=1e-3)

  def test_deflation_finds_the_next_eigenvalue(self):
    loss, params, exact = _quadratic_case()
    grads = tf.gradients(loss, params)
    values, _ = hessian.top_eigenvalues(grads, params, num_iters=100,
                                        top_n=2, seed=0)
    eigenvalues = np.linalg.eigvalsh(exact)
    top, second = self.evaluate(values)
    self.assertAllClose(top, eigenvalues[-1], rtol=1e-3)
    self.assertAllClose(second, eigenvalues[-2], rtol=1e-2)

  def test_top_eigenvalue_of_a_softmax_regression(self):
    problem = pg.SoftmaxRegression(3, 3, random_seed=0)
    loss, params = _classifier_case(problem)
    grads = tf.gradients(loss, params)
    value = hessian.top_eigenvalue_sum(grads, params, num_iters=100, seed=1)
    with self.cached_session() as sess:
      exact = _exact_hessian(loss, params, sess)
      estimate = sess.run(value)
    eigenvalues = np.linalg.eigvalsh(exact)
    self.assertAllClose(estimate, eigenvalues[np.argmax(np.abs(eigenvalues))],
                        rtol=1e-3)


class LanczosTest(tf.test.TestCase):

  def test_full_lanczos_reproduces_the_spectrum(self):
    loss, params, exact = _quadratic_case()
    grads = tf.gradients(loss, params)
    ritz, weights = hessian.slq_density(grads, params, num_steps=6, seed=2)
    ritz, weights = self.evaluate([ritz, weights])
    self.assertAllClose(np.sort(ritz), np.linalg.eigvalsh(exact), rtol=1e-3,
                        atol=1e-3)
    self.assertAllClose(np.sum(weights), 1.0, rtol=1e-5)
    self.assertTrue(np.all(weights >= 0))

  def test_lanczos_trace_is_the_sum_of_the_ritz_values(self):
    problem = pg.FullyConnected(3, 3, hidden_sizes=(2,), random_seed=0)
    loss, params = _classifier_case(problem, seed=3)
    grads = tf.gradients(loss, params)
    alphas, betas = hessian.lanczos(grads, params, num_steps=5, seed=0,
                                    fixed_probes=True)
    ritz = tf.linalg.eigvalsh(hessian.tridiagonal(alphas, betas))
    trace = hessian.lanczos_trace(grads, params, num_steps=5, seed=0,
                                  fixed_probes=True)
    ritz_sum, value = self.evaluate([tf.reduce_sum(ritz), trace])
    self.assertAllClose(value, ritz_sum, rtol=1e-4, atol=1e-6)

  def test_tridiagonal_layout(self):
    matrix = self.evaluate(hessian.tridiagonal(tf.constant([1., 2., 3.]),
                                               tf.constant([4., 5.])))
    self.assertAllEqual(matrix, [[1, 4, 0], [4, 2, 5], [0, 5, 3]])

  def test_slq_density_of_a_tiny_mlp_matches_its_spectrum_range(self):
    problem = pg.FullyConnected(3, 3, hidden_sizes=(2,), random_seed=0)
    loss, params = _classifier_case(problem, seed=4)
    grads = tf.gradients(loss, params)
    n = sum(int(np.prod(p.get_shape().as_list())) for p in params)
    ritz, weights = hessian.slq_density(grads, params, num_steps=n, seed=5)
    with self.cached_session() as sess:
      exact = np.linalg.eigvalsh(_exact_hessian(loss, params, sess))
      ritz, weights = sess.run([ritz, weights])
    self.assertAllClose(np.sum(weights), 1.0, rtol=1e-5)
    # Extreme Ritz values converge first.
    self.assertAllClose(ritz.max(), exact.max(), rtol=1e-2, atol=1e-3)
    self.assertAllClose(ritz.min(), exact.min(), rtol=1e-2, atol=1e-3)


def _numpy_lanczos(matrix, start, num_steps):
  """The original's Lanczos (full re-orthogonalisation) in float64 numpy."""
  normalize = lambda x: x / (np.linalg.norm(x) + hessian.NORM_EPSILON)
  v = normalize(start)
  basis = [v]
  hv = matrix.dot(v)
  alphas, betas = [hv.dot(v)], []
  w = hv - alphas[0] * v
  for _ in range(1, num_steps):
    betas.append(np.linalg.norm(w))
    v_prev = basis[-1]
    for b in basis:
      w = w - w.dot(b) * b
    v = normalize(w)
    basis.append(v)
    hv = matrix.dot(v)
    alphas.append(hv.dot(v))
    w = hv - alphas[-1] * v - betas[-1] * v_prev
  return np.array(alphas), np.array(betas)


class FlatVectorTest(tf.test.TestCase):

  def test_unflatten_inverts_flatten(self):
    vectors = [tf.constant(np.arange(6.).reshape(3, 2), tf.float32),
               tf.constant([7.]), tf.constant(np.ones((2, 1, 2)), tf.float32)]
    flat = hessian.flatten(vectors)
    back = hessian.unflatten(flat, [[3, 2], [1], [2, 1, 2]])
    self.assertEqual(flat.get_shape().as_list(), [11])
    for original, restored in zip(self.evaluate(vectors),
                                  self.evaluate(back)):
      self.assertAllEqual(original, restored)

  def test_flat_product_is_the_per_tensor_product(self):
    problem = pg.FullyConnected(3, 3, hidden_sizes=(2,), random_seed=0)
    loss, params = _classifier_case(problem, seed=6)
    grads = tf.gradients(loss, params)
    rng = np.random.RandomState(7)
    vectors = [tf.constant(rng.randn(*p.get_shape().as_list()), tf.float32)
               for p in params]
    per_tensor = hessian.flatten(hessian.hessian_vector_product(
        grads, params, vectors))
    flat = hessian.flat_hessian_vector_product_fn(grads, params)(
        hessian.flatten(vectors))
    self.assertAllClose(*self.evaluate([flat, per_tensor]), rtol=1e-6,
                        atol=1e-7)


class LanczosReferenceTest(tf.test.TestCase):

  def test_lanczos_matches_a_numpy_reference_step_by_step(self):
    problem = pg.FullyConnected(3, 3, hidden_sizes=(2,), random_seed=0)
    loss, params = _classifier_case(problem, seed=3)
    grads = tf.gradients(loss, params)
    alphas, betas = hessian.lanczos(grads, params, num_steps=6, seed=11,
                                    fixed_probes=True)
    rng = np.random.RandomState(11)
    start = np.concatenate([
        (2. * rng.randint(0, 2, p.get_shape().as_list()) - 1.).ravel()
        for p in params])
    with self.cached_session() as sess:
      exact = _exact_hessian(loss, params, sess)
      alphas, betas = sess.run([alphas, betas])
    expected_alphas, expected_betas = _numpy_lanczos(exact, start, 6)
    self.assertAllClose(alphas, expected_alphas, rtol=1e-4, atol=1e-5)
    self.assertAllClose(betas, expected_betas, rtol=1e-4, atol=1e-5)


class LanczosRecurrenceTest(tf.test.TestCase):
  """The one recurrence, run with TF ops and with NumPy."""

  def _case(self, seed=0, ndim=7):
    rng = np.random.RandomState(seed)
    basis, _ = np.linalg.qr(rng.randn(ndim, ndim))
    # Eigenvalues in [1, 3]: well conditioned, so float32 stays close.
    matrix = basis.dot(np.diag(np.linspace(1., 3., ndim))).dot(basis.T)
    return matrix, rng.randn(ndim)

  def _tf_recurrence(self, matrix, start, num_steps):
    constant = tf.constant(matrix, tf.float32)
    alphas, betas = hessian.lanczos_recurrence(
        lambda v: tf.linalg.matvec(constant, v),
        tf.constant(start, tf.float32), num_steps,
        dot=lambda a, b: tf.reduce_sum(a * b), sqrt=tf.sqrt)
    return self.evaluate([tf.stack(alphas), tf.stack(betas)])

  def test_tf_and_numpy_paths_agree(self):
    matrix, start = self._case()
    tf_alphas, tf_betas = self._tf_recurrence(matrix, start, 6)
    np_alphas, np_betas = hessian.lanczos_recurrence(
        matrix.dot, start, 6, dot=np.dot, sqrt=np.sqrt)
    self.assertLen(np_alphas, 6)
    self.assertLen(np_betas, 5)
    self.assertAllClose(tf_alphas, np_alphas, rtol=1e-5, atol=1e-5)
    self.assertAllClose(tf_betas, np_betas, rtol=1e-5, atol=1e-5)

  def test_numpy_path_is_the_reference_lanczos(self):
    matrix, start = self._case(seed=1)
    alphas, betas = hessian.lanczos_recurrence(matrix.dot, start, 6,
                                               dot=np.dot, sqrt=np.sqrt)
    expected_alphas, expected_betas = _numpy_lanczos(matrix, start, 6)
    self.assertAllClose(alphas, expected_alphas, rtol=1e-12, atol=1e-12)
    self.assertAllClose(betas, expected_betas, rtol=1e-12, atol=1e-12)

  def test_breakdown_ends_the_recurrence(self):
    # Two distinct eigenvalues: the Krylov space has dimension two.
    matrix = np.diag([1., 1., 1., 5., 5.])
    seen = []

    def breakdown(beta, alphas, betas):
      seen.append((beta, len(alphas), len(betas)))
      # Not exactly zero: normalize's epsilon leaves a residual ~1e-6.
      return beta < 1e-4

    alphas, betas = hessian.lanczos_recurrence(
        matrix.dot, np.ones(5), 5, dot=np.dot, sqrt=np.sqrt,
        breakdown=breakdown)
    self.assertLen(alphas, 2)
    self.assertLen(betas, 1)
    self.assertEqual([(n, m) for _, n, m in seen], [(1, 0), (2, 1)])
    self.assertAllClose(np.linalg.eigvalsh(np.diag(alphas) +
                                           np.diag(betas, 1) +
                                           np.diag(betas, -1)), [1., 5.],
                        rtol=1e-5)


class JacobianAndRegistryTest(tf.test.TestCase):

  def test_mean_squared_gradient(self):
    grads = [tf.constant([[1., 2.]]), tf.constant([3.])]
    self.assertAllClose(self.evaluate(jacobian.mean_squared_gradient(grads)),
                        (1 + 4 + 9) / 3.)

  def test_registry_builds_each_option(self):
    loss, params, exact = _quadratic_case()
    values = {}
    for name in registry.NAMES:
      regularizer = registry.make_regularizer(name, num_iters=6, seed=0)
      values[name] = self.evaluate(regularizer(loss, params))
    eigenvalues = np.linalg.eigvalsh(exact)
    self.assertAllClose(values["hessian-esd"], np.trace(exact), rtol=1e-3)
    self.assertLessEqual(values["hessian-ev"], eigenvalues[-1] * 1.0001)
    self.assertGreater(values["hessian-ev"], 0.5 * eigenvalues[-1])
    grad = exact.dot(self.evaluate(params[0])) - \
        pg.Quadratic(6, random_seed=0).w.T.dot(pg.Quadratic(6,
                                                            random_seed=0).y)
    self.assertAllClose(values["jacob"], np.mean(grad**2), rtol=1e-3)

  def test_unknown_options_are_rejected(self):
    with self.assertRaisesRegex(ValueError, "unknown regulariser"):
      registry.make_regularizer("hessian-typo")
    with self.assertRaises(ValueError):
      registry.make_regularizer("hessian", num_iters=0)


if __name__ == "__main__":
  tf.test.main()
