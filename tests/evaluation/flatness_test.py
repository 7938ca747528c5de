"""Tests of evaluation.flatness against exactly known Hessians (numpy)."""

from tests import test_util

import os

import numpy as np
import tensorflow.compat.v1 as tf

from evaluation import data_pool
from evaluation import flatness
from evaluation import plot
from problems import datasets
from problems import problem_generator as pg
from regularizers import hessian


class LeastSquares(pg.Problem):
  """f(w, b) = mean_i (x_i . w + b - y_i)^2 / 2 with y = the labels.

  Its Hessian is A^T A / N for A = [X, 1] (without the bias: X^T X / N),
  whatever the parameters and labels.
  """

  def __init__(self, n_features, bias=True):
    shapes = [(n_features, 1)] + ([(1,)] if bias else [])
    super().__init__(shapes, random_seed=0, noise_stdev=0.)

  def objective(self, parameters, data=None, labels=None):
    prediction = tf.matmul(data, parameters[0])[:, 0]
    if len(parameters) > 1:
      prediction += parameters[1][0]
    return 0.5 * tf.reduce_mean(tf.square(prediction -
                                          tf.cast(labels, tf.float32)))


def exact_hessian(data, bias=True):
  """A^T A / N in float64, A = [X, 1] (or X)."""
  a = np.asarray(data, np.float64)
  if bias:
    a = np.concatenate([a, np.ones((len(a), 1))], axis=1)
  return a.T.dot(a) / len(a)


def random_dataset(n_samples, n_features, seed=0):
  rng = np.random.RandomState(seed)
  data = (rng.randn(n_samples, n_features) *
          np.linspace(0.5, 2., n_features)).astype(np.float32)
  labels = rng.randint(0, 5, n_samples).astype(np.int32)
  return datasets.Dataset(data, labels)


def diagonal_dataset(scales, n_samples=40, seed=0):
  """Data with orthogonal columns: the Hessian X^T X / N is diag(scales)."""
  columns, _ = np.linalg.qr(np.random.RandomState(seed).randn(
      n_samples, len(scales)))
  data = columns * np.sqrt(n_samples * np.asarray(scales, np.float64))
  return datasets.Dataset(data.astype(np.float32),
                          np.zeros(n_samples, np.int32))


def hutchinson_standard_error(matrix, num_probes):
  """The standard error of the Rademacher Hutchinson mean.

  Var(z^T H z) = 2 sum_{i != j} H_ij^2 for i.i.d. +-1 entries z_i (the
  diagonal terms are exact, each off-diagonal pair contributes
  4 H_ij^2 Var(z_i z_j) = 4 H_ij^2 over i < j).
  """
  off_diagonal = matrix - np.diag(np.diag(matrix))
  return np.sqrt(2. * np.sum(np.square(off_diagonal)) / num_probes)


class MeasureTest(test_util.TestCase):

  def _measure(self, problem, dataset, params=None, **kwargs):
    """flatness.measure at `params` (default: ones) in a fresh graph."""
    with tf.Graph().as_default():
      if params is None:
        params = [np.ones(shape, np.float32) for shape in problem.param_shapes]
      variables = [tf.Variable(p) for p in params]
      pool = data_pool.DataPool({"train": dataset}, shuffled=("train",))
      with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        pool.initialize(sess)
        return flatness.measure(sess, problem, variables, pool, **kwargs)

  def test_products_are_the_exact_hessian_times_the_vector(self):
    dataset = random_dataset(50, 4)
    problem = LeastSquares(4)
    vector = np.random.RandomState(1).randn(5)
    with tf.Graph().as_default():
      params = [tf.constant(np.ones(s), tf.float32)
                for s in problem.param_shapes]
      pool = data_pool.DataPool({"train": dataset})
      with tf.Session() as sess:
        pool.initialize(sess)
        product = flatness.DataHessian(sess, problem, params, pool,
                                       chunk_size=7)
        self.assertEqual(product.dimension, 5)
        self.assertEqual(product.num_samples, 50)
        self.assertAllClose(product(vector),
                            exact_hessian(dataset.data).dot(vector),
                            rtol=1e-5, atol=1e-5)

  def test_top_eigenvalue_and_trace_of_a_least_squares_problem(self):
    dataset = random_dataset(300, 40)
    problem = LeastSquares(40)
    matrix = exact_hessian(dataset.data)
    num_probes = 400
    curvature = self._measure(problem, dataset, lanczos_steps=30,
                              num_probes=num_probes, chunk_size=100, seed=2)
    self.assertEqual(curvature.lanczos_steps, 30)
    self.assertEqual(curvature.num_samples, 300)
    # 30 steps in 41 dimensions: the top Ritz value has converged.
    self.assertAllClose(curvature.top_eigenvalue,
                        np.linalg.eigvalsh(matrix)[-1], rtol=1e-4)
    # Four standard errors of the estimator (about 5% of the trace here).
    expected_error = hutchinson_standard_error(matrix, num_probes)
    self.assertLess(abs(curvature.trace - np.trace(matrix)),
                    4 * expected_error)
    # The reported standard error estimates the exact one.
    self.assertAllClose(curvature.trace_stderr, expected_error, rtol=0.25)

  def test_hutchinson_is_exact_for_a_diagonal_hessian(self):
    scales = [0.5, 1., 2., 3., 7.]
    dataset = diagonal_dataset(scales)
    curvature = self._measure(LeastSquares(5, bias=False), dataset,
                              lanczos_steps=5, num_probes=1)
    self.assertAllClose(curvature.trace, sum(scales), rtol=1e-5)
    self.assertIsNone(curvature.trace_stderr)
    curvature = self._measure(LeastSquares(5, bias=False), dataset,
                              lanczos_steps=5, num_probes=4)
    self.assertAllClose(curvature.trace_stderr, 0., atol=1e-5)
    self.assertAllClose(curvature.top_eigenvalue, 7., rtol=1e-5)

  def test_full_lanczos_gives_the_eigenvalues_and_weights_sum_to_one(self):
    dataset = random_dataset(60, 5)
    curvature = self._measure(LeastSquares(5), dataset, lanczos_steps=6,
                              num_probes=2)
    self.assertEqual(curvature.lanczos_steps, 6)
    self.assertAllClose(curvature.ritz_values,
                        np.linalg.eigvalsh(exact_hessian(dataset.data)),
                        rtol=1e-4, atol=1e-5)
    self.assertAllClose(np.sum(curvature.weights), 1., rtol=1e-9)
    self.assertTrue(np.all(np.array(curvature.weights) >= 0))

  def test_steps_beyond_the_dimension_are_capped(self):
    dataset = random_dataset(60, 3)
    curvature = self._measure(LeastSquares(3), dataset, lanczos_steps=30,
                              num_probes=1)
    self.assertEqual(curvature.lanczos_steps, 4)
    self.assertAllClose(curvature.ritz_values,
                        np.linalg.eigvalsh(exact_hessian(dataset.data)),
                        rtol=1e-4, atol=1e-5)

  def test_an_exhausted_krylov_space_ends_lanczos_early(self):
    # Three distinct eigenvalues: a Rademacher start puts weight
    # (multiplicity / dimension) on each, and Lanczos stops after three.
    dataset = diagonal_dataset([1., 1., 1., 4., 4., 9.])
    curvature = self._measure(LeastSquares(6, bias=False), dataset,
                              lanczos_steps=30, num_probes=1)
    self.assertEqual(curvature.lanczos_steps, 3)
    self.assertAllClose(curvature.ritz_values, [1., 4., 9.], rtol=1e-5)
    self.assertAllClose(curvature.weights, [3 / 6., 2 / 6., 1 / 6.],
                        rtol=1e-5)

  def test_chunked_products_equal_one_chunk(self):
    dataset = random_dataset(103, 6)
    problem = LeastSquares(6)
    whole = self._measure(problem, dataset, lanczos_steps=5, num_probes=3,
                          chunk_size=1000)
    chunked = self._measure(problem, dataset, lanczos_steps=5, num_probes=3,
                            chunk_size=10)
    self.assertAllClose(chunked.ritz_values, whole.ritz_values, rtol=1e-5)
    self.assertAllClose(chunked.weights, whole.weights, rtol=1e-4,
                        atol=1e-6)
    self.assertAllClose(chunked.trace, whole.trace, rtol=1e-5)

  def test_max_samples_measures_the_pools_fixed_subset(self):
    dataset = random_dataset(200, 4)
    problem = LeastSquares(4)
    first = self._measure(problem, dataset, lanczos_steps=5, num_probes=2,
                          max_samples=50, seed=3, chunk_size=16)
    again = self._measure(problem, dataset, lanczos_steps=5, num_probes=2,
                          max_samples=50, seed=3, chunk_size=16)
    order = np.random.RandomState(data_pool.SUBSET_SEED).permutation(200)
    chosen = datasets.Dataset(dataset.data[order[:50]],
                              dataset.labels[order[:50]])
    self.assertEqual(first.num_samples, 50)
    self.assertAllClose(first.ritz_values, again.ritz_values, rtol=1e-6)
    self.assertAllClose(first.trace, again.trace, rtol=1e-6)
    self.assertAllClose(first.ritz_values,
                        np.linalg.eigvalsh(exact_hessian(chosen.data)),
                        rtol=1e-4, atol=1e-5)
    self.assertNotAllClose(first.ritz_values, np.linalg.eigvalsh(
        exact_hessian(dataset.data)), rtol=1e-2)

  def test_a_data_free_problem_at_its_variables(self):
    problem = pg.Quadratic(6, random_seed=1)
    matrix = problem.w.T.dot(problem.w).astype(np.float64)
    with tf.Graph().as_default():
      params = problem.init_variables(seed=0)
      with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        curvature = flatness.measure(sess, problem, params, None,
                                     lanczos_steps=6, num_probes=1)
    self.assertEqual(curvature.num_samples, 0)
    self.assertAllClose(curvature.ritz_values, np.linalg.eigvalsh(matrix),
                        rtol=1e-3, atol=1e-3)

  def test_numpy_lanczos_reproduces_the_in_graph_lanczos(self):
    # hessian.lanczos with fixed probes starts where measure does, so the
    # NumPy-driven and the TF-built recurrence give the same T.
    problem = pg.FullyConnected(3, 3, hidden_sizes=(4,), random_seed=0)
    rng = np.random.RandomState(5)
    dataset = datasets.Dataset(rng.randn(40, 3).astype(np.float32),
                               rng.randint(0, 3, 40).astype(np.int32))
    values = [0.5 * rng.randn(*s).astype(np.float32)
              for s in problem.param_shapes]
    curvature = self._measure(problem, dataset, values, lanczos_steps=6,
                              num_probes=1, seed=7, chunk_size=9)
    with tf.Graph().as_default():
      params = [tf.constant(v) for v in values]
      loss = problem.objective(params, tf.constant(dataset.data),
                               tf.constant(dataset.labels))
      ritz, weights = hessian.slq_density(tf.gradients(loss, params), params,
                                          num_steps=6, seed=7,
                                          fixed_probes=True)
      with tf.Session() as sess:
        ritz, weights = sess.run([ritz, weights])
    self.assertAllClose(curvature.ritz_values, ritz, rtol=1e-4, atol=1e-5)
    self.assertAllClose(curvature.weights, weights, rtol=1e-3, atol=1e-4)

  def test_results_are_plain_python_numbers(self):
    curvature = self._measure(LeastSquares(2), random_dataset(10, 2),
                              lanczos_steps=2, num_probes=1)
    for value in (curvature.top_eigenvalue, curvature.trace):
      self.assertIsInstance(value, float)
    for value in curvature.ritz_values + curvature.weights:
      self.assertIsInstance(value, float)
    for value in (curvature.num_samples, curvature.lanczos_steps,
                  curvature.num_probes):
      self.assertIsInstance(value, int)

  def test_rejects_zero_steps_or_probes(self):
    identity = lambda v: v
    with self.assertRaises(ValueError):
      flatness.curvature(identity, [[3]], lanczos_steps=0)
    with self.assertRaises(ValueError):
      flatness.curvature(identity, [[3]], num_probes=0)


class CurvatureOfAMatrixTest(test_util.TestCase):

  def test_matches_numpy_for_an_indefinite_matrix(self):
    rng = np.random.RandomState(0)
    a = rng.randn(8, 8)
    matrix = (a + a.T) / 2.
    curvature = flatness.curvature(matrix.dot, [[2, 2], [4]],
                                   lanczos_steps=8, num_probes=5000, seed=1)
    # Exact arithmetic but for normalize's epsilon (v / (||v|| + 1e-6)).
    self.assertAllClose(curvature.ritz_values, np.linalg.eigvalsh(matrix),
                        rtol=1e-5, atol=1e-5)
    # Four standard errors (see hutchinson_standard_error).
    self.assertLess(abs(curvature.trace - np.trace(matrix)),
                    4 * hutchinson_standard_error(matrix, 5000))


  def test_a_non_finite_operator_gives_nan_not_an_error(self):
    # The Hessian at a diverged run's NaN parameters: eigh of a NaN
    # tridiagonal matrix failed to converge (LinAlgError) or gave NaN.
    matrix = np.eye(6)
    matrix[2, 3] = matrix[3, 2] = np.nan
    curvature = flatness.curvature(matrix.dot, [[6]], lanczos_steps=4,
                                   num_probes=2, seed=0)
    self.assertTrue(np.isnan(curvature.top_eigenvalue))
    self.assertTrue(np.isnan(curvature.trace))
    self.assertLen(curvature.ritz_values, curvature.lanczos_steps)
    self.assertTrue(np.all(np.isnan(curvature.ritz_values)))
    self.assertTrue(np.all(np.isnan(curvature.weights)))


class DensityTest(test_util.TestCase):

  def test_density_integrates_to_one_and_peaks_at_the_ritz_values(self):
    ritz_values, weights = [-1., 2., 10.], [0.2, 0.5, 0.3]
    grid = np.linspace(-5., 15., 4001)
    curve = flatness.density(ritz_values, weights, grid, width=0.1)
    self.assertAllClose(np.trapezoid(curve, grid), 1., rtol=1e-6)
    peak = 0.5 / (0.1 * np.sqrt(2 * np.pi))
    self.assertAllClose(curve[np.argmin(np.abs(grid - 2.))], peak, rtol=1e-6)
    self.assertAllClose(curve[np.argmin(np.abs(grid - 6.))], 0., atol=1e-12)

  def test_density_rejects_a_zero_width(self):
    with self.assertRaises(ValueError):
      flatness.density([1.], [1.], [0., 1.], width=0.)


class PlotHessianSpectraTest(test_util.TestCase):

  def test_writes_a_png_when_matplotlib_is_installed(self):
    path = os.path.join(self.make_tempdir(), "spectra.png")
    spectra = {"L2O": [([-0.1, 0.5, 3.], [0.6, 0.3, 0.1]),
                       ([0., 0.4, 2.5], [0.5, 0.4, 0.1])],
               "Adam": [([0., 1., 12.], [0.7, 0.2, 0.1])]}
    written = plot.plot_hessian_spectra(path, spectra, title="t")
    if not plot.available():
      self.assertIsNone(written)
      self.assertFalse(os.path.exists(path))
      return
    self.assertEqual(written, path)
    with open(path, "rb") as f:
      self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


if __name__ == "__main__":
  tf.test.main()
