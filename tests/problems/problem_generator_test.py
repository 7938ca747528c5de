"""Tests of the problem classes against numpy ground truth and known minima."""

from tests import test_util

import numpy as np
from scipy import special
import tensorflow.compat.v1 as tf

from problems import problem_generator as pg
from problems import problem_spec


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


class ObjectiveEvaluator(object):
  """Evaluates a problem's objective and gradients at fed parameter values."""

  def __init__(self, problem, data=None, labels=None):
    self.problem = problem
    self.params = [tf.placeholder(tf.float32, shape)
                   for shape in problem.param_shapes]
    self.objective = problem.objective(self.params, data, labels)
    self.grads = [tf.convert_to_tensor(g) for g in
                  tf.gradients(self.objective, self.params)]
    self.sess = tf.Session()

  def value(self, values):
    return self.sess.run(self.objective, dict(zip(self.params, values)))

  def gradients(self, values):
    return self.sess.run(self.grads, dict(zip(self.params, values)))


class KnownValuesTest(tf.test.TestCase):
  """Classic test functions at their minima and at one other point."""

  def _value(self, problem_cls, point):
    problem = problem_cls(random_seed=0)
    return ObjectiveEvaluator(problem).value([np.asarray(point, np.float32)])

  def test_test_functions_take_their_known_minima(self):
    minima = [
        (pg.Rosenbrock, (1., 1.), 0.),
        (pg.Booth, (1., 3.), 0.),
        (pg.Matyas, (0., 0.), 0.),
        (pg.Beale, (3., 0.5), 0.),
        (pg.Ackley, (0., 0.), 0.),
        (pg.Branin, (-np.pi, 12.275), 0.397887),
        (pg.Branin, (np.pi, 2.275), 0.397887),
        (pg.Branin, (9.42478, 2.475), 0.397887),
        (pg.StyblinskiTang, (-2.903534, -2.903534), -78.33233 + 80),
        (pg.Michalewicz, (2.18531196, 1.57079632), 0.19337711),
    ]
    for cls, point, expected in minima:
      self.assertAllClose(self._value(cls, point), expected, atol=2e-5,
                          msg=cls.__name__)

  def test_test_functions_match_their_formulas_elsewhere(self):
    x, y = 0.7, -1.3
    expected = {
        pg.Rosenbrock: (1 - x)**2 + 100 * (y - x**2)**2,
        pg.Booth: (x + 2 * y - 7)**2 + (2 * x + y - 5)**2,
        pg.Matyas: 0.26 * (x**2 + y**2) - 0.48 * x * y,
        pg.Beale: ((1.5 - x + x * y)**2 + (2.25 - x + x * y**2)**2 +
                   (2.625 - x + x * y**3)**2),
        pg.Saddle: x**2 - y**2,
        pg.LogSumExp: np.log(np.exp(x + 3 * y - 0.1) +
                             np.exp(x - 3 * y - 0.1) + np.exp(-x - 0.1) + 1),
        pg.Ackley: (-20 * np.exp(-0.2 * np.sqrt(0.5 * (x**2 + y**2))) -
                    np.exp(0.5 * (np.cos(2 * np.pi * x) +
                                  np.cos(2 * np.pi * y))) + np.e + 20),
        pg.StyblinskiTang: 0.5 * (x**4 - 16 * x**2 + 5 * x +
                                  y**4 - 16 * y**2 + 5 * y) + 80,
        pg.Branin: ((y - 5.1 / (4 * np.pi**2) * x**2 + 5 / np.pi * x - 6)**2
                    + 10 * (1 - 1 / (8 * np.pi)) * np.cos(x) + 10),
        pg.Michalewicz: 2 - (np.sin(x) * np.sin(x**2 / np.pi)**10 +
                             np.sin(y) * np.sin(2 * y**2 / np.pi)**10),
    }
    for cls, value in expected.items():
      self.assertAllClose(self._value(cls, (x, y)), value, rtol=1e-5,
                          atol=1e-5, msg=cls.__name__)

  def test_surface_matches_objective_on_grid(self):
    xm, ym, zm = pg.Booth(random_seed=0).surface(n=5, xlim=2, ylim=3)
    self.assertEqual(zm.shape, (5, 5))
    self.assertAllClose(zm, (xm + 2 * ym - 7)**2 + (2 * xm + ym - 5)**2,
                        rtol=1e-5)
    bowl = pg.Bowl(4.0, angle=0.3, random_seed=0)
    xm, ym, zm = bowl.surface(xlim=1, ylim=2, n=4)
    point = np.array([[xm[1, 2]], [ym[1, 2]]], np.float32)
    self.assertAllClose(zm[1, 2], ObjectiveEvaluator(bowl).value([point]),
                        rtol=1e-5)


class RandomProblemsTest(tf.test.TestCase):

  def test_quadratic_is_half_squared_residual_of_its_data(self):
    problem = pg.Quadratic(6, random_seed=3)
    x = np.random.RandomState(0).randn(6, 1).astype(np.float32)
    expected = 0.5 * np.sum((problem.w.dot(x) - problem.y)**2)
    self.assertAllClose(ObjectiveEvaluator(problem).value([x]), expected,
                        rtol=1e-5)

  def test_seeded_data_equals_the_originals_global_seeding(self):
    problem = pg.Quadratic(5, random_seed=42)
    np.random.seed(42)
    self.assertAllEqual(problem.w, np.random.randn(5, 5).astype("float32"))
    self.assertAllEqual(problem.y, np.random.randn(5, 1).astype("float32"))

  def test_construction_leaves_the_global_rng_alone_when_seeded(self):
    np.random.seed(7)
    expected = np.random.rand()
    np.random.seed(7)
    pg.Quadratic(5, random_seed=1)
    self.assertEqual(np.random.rand(), expected)

  def test_seed_must_be_an_integer(self):
    with self.assertRaisesRegex(ValueError, "integer"):
      pg.Quadratic(3, random_seed=1.5)
    self.assertEqual(pg.Quadratic(3, random_seed=np.int64(4)).random_seed, 4)

  def test_num_params_counts_every_scalar(self):
    self.assertEqual(pg.FullyConnected(784, 10, hidden_sizes=(20,)).num_params,
                     15910)
    self.assertEqual(
        pg.ConvNet((1, 28, 28), 10, [(3, 3, 8), (5, 5, 8)]).num_params, 64418)
    self.assertEqual(
        pg.ConvNet((3, 32, 32), 10, [(3, 3, 16), (5, 5, 16)]).num_params,
        170714)
    self.assertEqual(pg.IsotropicQuadratic([(), (2, 3)], 1, 0.).num_params, 7)

  def test_lasso_adds_l1_norm(self):
    problem = pg.Lasso(4, lambda_=0.5, random_seed=2)
    x = np.array([[1.], [-2.], [0.5], [0.]], np.float32)
    expected = (0.5 * np.sum((problem.w.dot(x) - problem.y)**2) +
                0.5 * np.sum(np.abs(x)))
    self.assertAllClose(ObjectiveEvaluator(problem).value([x]), expected,
                        rtol=1e-5)

  def test_rastrigin_keeps_the_originals_scaling(self):
    problem = pg.Rastrigin(3, alpha=2., random_seed=5)
    x = np.array([[0.3], [-0.2], [1.1]], np.float32)
    residual = problem.a.dot(x) - problem.b
    expected = (np.sum(residual**2) / (2 * 3) -
                2. * problem.c.T.dot(np.cos(2 * np.pi * x)).item() + 2. * 9)
    self.assertAllClose(ObjectiveEvaluator(problem).value([x]), expected,
                        rtol=1e-5)

  def test_norm_is_p_norm_of_residual(self):
    problem = pg.Norm(5, random_seed=4, norm_power=3.)
    x = np.random.RandomState(1).randn(5, 1).astype(np.float32)
    d = problem.w.dot(x) - problem.y
    expected = np.sum((np.abs(d) + 1e-6)**3)**(1. / 3)
    self.assertAllClose(ObjectiveEvaluator(problem).value([x]), expected,
                        rtol=1e-5)

  def test_bowl_rotates_and_scales(self):
    problem = pg.Bowl(9.0, angle=np.pi / 2, random_seed=0)
    # A = diag(3, 1) R(pi/2): A [1, 0]^T = [0, 1]^T, A [0, 1]^T = [-3, 0]^T.
    evaluator = ObjectiveEvaluator(problem)
    self.assertAllClose(evaluator.value([np.array([[1.], [0.]])]), 0.5)
    self.assertAllClose(evaluator.value([np.array([[0.], [1.]])]), 4.5)
    with self.assertRaises(ValueError):
      pg.Bowl(0.0)

  def test_dependency_chain_multiplies_first_term_by_ndim(self):
    p = np.array([0.5, 2.0, -1.0, 3.0], np.float32)
    expected = 3 * 0.25 + sum(p[i]**2 / (p[i - 1]**2 + 1e-6)
                              for i in range(1, 4))
    self.assertAllClose(
        ObjectiveEvaluator(pg.DependencyChain(3, random_seed=0)).value([p]),
        expected, rtol=1e-5)

  def test_min_max_well_is_zero_when_extremes_have_unit_magnitude(self):
    evaluator = ObjectiveEvaluator(pg.MinMaxWell(3, random_seed=0))
    self.assertAllClose(evaluator.value([np.array([1., -1., 1.])]), 0.,
                        atol=1e-6)
    self.assertAllClose(evaluator.value([np.array([2., 0.5, 1.])]),
                        4. + 4. - 2., rtol=1e-6)

  def test_data_driven_toy_problems_match_numpy(self):
    rng = np.random.RandomState(0)
    data = rng.randn(4, 3).astype(np.float32)
    p_row = rng.randn(1, 3).astype(np.float32)
    p_vec = rng.randn(3).astype(np.float32)
    cases = [
        (pg.ProjectionQuadratic(3, random_seed=0), p_row,
         np.sum((p_row * data)**2)),
        (pg.SumOfQuadratics(3, random_seed=0), p_row,
         np.sum((p_row - data)**2) - np.sum(data**2)),
        (pg.OutwardSnake(3, random_seed=0), p_vec,
         np.sum(data[:, 0]) / (np.linalg.norm(p_vec) + 1e-6) +
         np.sum(((p_vec[1:] - np.pi * np.cos(p_vec[:-1])) * data[:, 1:])**2)),
    ]
    for problem, params, expected in cases:
      evaluator = ObjectiveEvaluator(problem, tf.constant(data))
      self.assertAllClose(evaluator.value([params]), expected, rtol=1e-4,
                          msg=type(problem).__name__)

  def test_isotropic_quadratic_sums_all_squares(self):
    problem = pg.IsotropicQuadratic([(2,), (1, 2)], 0, 0.0)
    self.assertAllClose(
        ObjectiveEvaluator(problem).value([np.array([1., 2.]),
                                           np.array([[3., -1.]])]), 15.)


class MatMulAlgorithmTest(tf.test.TestCase):

  def _naive_algorithm(self, n):
    """theta_a, theta_b of the schoolbook algorithm (k = n^3 products)."""
    k = n**3
    theta_a = np.zeros((n * n, k), np.float32)
    theta_b = np.zeros((n * n, k), np.float32)
    col = 0
    for i in range(n):
      for j in range(n):
        for l in range(n):
          theta_a[i * n + l, col] = 1.  # A[i, l]
          theta_b[l * n + j, col] = 1.  # B[l, j]
          col += 1
    return theta_a, theta_b

  def test_schoolbook_algorithm_has_zero_loss(self):
    problem = pg.MatMulAlgorithm(2, 8)
    value = ObjectiveEvaluator(problem).value(list(self._naive_algorithm(2)))
    self.assertAllClose(value, 0., atol=1e-8)

  def test_too_few_products_leave_a_positive_loss(self):
    problem = pg.MatMulAlgorithm(2, 5)
    values = [np.random.RandomState(1).randn(4, 5).astype(np.float32)
              for _ in range(2)]
    self.assertGreater(ObjectiveEvaluator(problem).value(values), 1e-3)

  def test_arguments_are_validated(self):
    for n, k in [(1, 1), (2, 3), (2, 9), (2., 5)]:
      with self.assertRaises(ValueError):
        pg.MatMulAlgorithm(n, k)

  def test_initial_columns_have_unit_norm(self):
    tensors = pg.MatMulAlgorithm(2, 6).init_tensors(seed=3)
    for value in self.evaluate(tensors):
      self.assertAllClose(np.linalg.norm(value, axis=0), np.ones(6),
                          rtol=1e-5)


class ClassifierTest(tf.test.TestCase):

  def test_fully_connected_matches_numpy_forward_pass(self):
    problem = pg.FullyConnected(5, 3, hidden_sizes=(4, 6), random_seed=0)
    self.assertEqual(problem.param_shapes,
                     [(5, 4), (4,), (4, 6), (6,), (6, 3), (3,)])
    rng = np.random.RandomState(2)
    values = test_util.feed_values(problem, rng)
    data = rng.randn(7, 5).astype(np.float32)
    labels = rng.randint(0, 3, size=7).astype(np.int32)
    h = data.dot(values[0]) + values[1]
    h = _sigmoid(h).dot(values[2]) + values[3]
    logits = _sigmoid(h).dot(values[4]) + values[5]
    expected = np.mean(special.logsumexp(logits, axis=1) -
                       logits[np.arange(7), labels])
    evaluator = ObjectiveEvaluator(problem, tf.constant(data),
                                   tf.constant(labels))
    self.assertAllClose(evaluator.value(values), expected, rtol=1e-5)

  def test_two_classes_use_sigmoid_loss_on_first_logit(self):
    problem = pg.SoftmaxRegression(4, 2, random_seed=0)
    rng = np.random.RandomState(3)
    values = test_util.feed_values(problem, rng)
    data = rng.randn(6, 4).astype(np.float32)
    labels = rng.randint(0, 2, size=(6, 1)).astype(np.int32)
    z = (data.dot(values[0]) + values[1])[:, 0]
    y = labels[:, 0]
    expected = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-abs(z))))
    evaluator = ObjectiveEvaluator(problem, tf.constant(data),
                                   tf.constant(labels))
    self.assertAllClose(evaluator.value(values), expected, rtol=1e-5)
    # The second logit column gets no gradient.
    self.assertAllClose(evaluator.gradients(values)[0][:, 1], np.zeros(4))

  def test_sparse_and_one_hot_regressions_agree(self):
    rng = np.random.RandomState(4)
    ids = rng.randint(0, 3, size=(5, 4)).astype(np.float32)
    labels = rng.randint(0, 3, size=5).astype(np.int32)
    sparse = pg.SparseSoftmaxRegression(2, 3, random_seed=0)
    dense = pg.OneHotSparseSoftmaxRegression(2, 3, random_seed=0)
    values = test_util.feed_values(sparse, rng)
    sparse_eval = ObjectiveEvaluator(sparse, tf.constant(ids),
                                     tf.constant(labels))
    dense_eval = ObjectiveEvaluator(dense, tf.constant(ids),
                                    tf.constant(labels))
    self.assertAllClose(sparse_eval.value(values), dense_eval.value(values),
                        rtol=1e-5)
    for g_sparse, g_dense in zip(sparse_eval.gradients(values),
                                 dense_eval.gradients(values)):
      self.assertAllClose(g_sparse, g_dense, rtol=1e-5, atol=1e-6)

  def test_accuracy_counts_correct_predictions(self):
    problem = pg.SoftmaxRegression(2, 3, random_seed=0)
    weights = np.eye(2, 3, dtype=np.float32)
    bias = np.zeros(3, np.float32)
    data = np.array([[1., 0.], [0., 1.], [1., 0.], [0., 2.]], np.float32)
    labels = np.array([0, 1, 1, 1], np.int32)
    accuracy = problem.accuracy([weights, bias], data, labels)
    self.assertAllClose(self.evaluate(accuracy), 0.75)

  def test_conv_net_matches_scipy_correlation(self):
    from scipy import signal  # pylint: disable=g-import-not-at-top
    problem = pg.ConvNet((1, 4, 4), 3, [(3, 3, 2)], random_seed=0)
    self.assertEqual(problem.param_shapes,
                     [(3, 3, 1, 2), (2,), (32, 3), (3,)])
    rng = np.random.RandomState(5)
    values = test_util.feed_values(problem, rng)
    data = rng.randn(2, 4, 4, 1).astype(np.float32)
    kernel, bias, weights, out_bias = values
    conv = np.stack([
        np.stack([signal.correlate2d(image[:, :, 0], kernel[:, :, 0, c],
                                     mode="same") + bias[c]
                  for c in range(2)], axis=-1) for image in data])
    logits = np.maximum(np.maximum(conv, 0).reshape(2, -1).dot(weights) +
                        out_bias, 0)
    logits_tf = problem.inference([tf.constant(v) for v in values],
                                  tf.constant(data))
    self.assertAllClose(self.evaluate(logits_tf), logits, rtol=1e-4,
                        atol=1e-5)

  def test_conv_net_orig_has_no_conv_biases_nor_logit_activation(self):
    problem = pg.ConvNetOrig((1, 28, 28), 10, [(3, 3, 8), (5, 5, 8)])
    self.assertEqual(problem.param_shapes,
                     [(3, 3, 1, 8), (5, 5, 8, 8), (6272, 10), (10,)])
    values = [np.zeros(s, np.float32) for s in problem.param_shapes]
    values[-1] = np.array([-1.] * 10, np.float32)
    logits = problem.inference([tf.constant(v) for v in values],
                               tf.zeros([2, 28, 28, 1]))
    self.assertAllClose(self.evaluate(logits), -np.ones((2, 10)))

  def test_pooled_conv_net_shapes_follow_the_originals_arithmetic(self):
    mnist = pg.PooledConvNet((1, 28, 28), 10, [(3, 3, 16, 1), (5, 5, 32, 1)],
                             affine_size=512)
    self.assertEqual(mnist.num_params, 18122)
    cifar = pg.PooledConvNet((3, 32, 32), 10, [(3, 3, 16, 2), (5, 5, 32, 2)],
                             affine_size=32)
    self.assertEqual(cifar.num_params, 13610)
    with self.assertRaisesRegex(ValueError, "affine_size"):
      pg.PooledConvNet((1, 28, 28), 10, [(3, 3, 8), (5, 5, 8)])

  def test_pooled_conv_net_test_mode_scales_by_the_bn_constant(self):
    problem = pg.PooledConvNet((1, 4, 4), 2, [(1, 1, 1)], affine_size=4,
                               activation=tf.identity)
    # Identity kernel and dense layer: logits = pooled(image) * scale.
    values = [np.ones((1, 1, 1, 1), np.float32), np.zeros(1, np.float32),
              np.eye(4, 2, dtype=np.float32), np.zeros(2, np.float32)]
    image = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    pooled = image[0, :, :, 0].reshape(2, 2, 2, 2).max(axis=(1, 3)).ravel()
    logits = problem.inference([tf.constant(v) for v in values],
                               tf.constant(image))
    self.assertAllClose(self.evaluate(logits)[0],
                        pooled[:2] / np.sqrt(1 + 1e-3), rtol=1e-6)

  def test_pooled_conv_net_applies_the_activation_to_logits_by_default(self):
    self.assertTrue(pg.PooledConvNet((1, 4, 4), 2, [(1, 1, 1)],
                                     affine_size=4).logits_activation)

  def test_pooled_conv_net_linear_logits_are_the_dense_output(self):
    linear = pg.PooledConvNet((1, 4, 4), 2, [(1, 1, 1)], affine_size=4,
                              logits_activation=False)
    # Identity kernel, dense layer -eye: logits = -pooled(image) * scale < 0.
    values = [np.ones((1, 1, 1, 1), np.float32), np.zeros(1, np.float32),
              -np.eye(4, 2, dtype=np.float32), np.zeros(2, np.float32)]
    image = np.arange(1, 17, dtype=np.float32).reshape(1, 4, 4, 1)
    pooled = image[0, :, :, 0].reshape(2, 2, 2, 2).max(axis=(1, 3)).ravel()
    logits = linear.inference([tf.constant(v) for v in values],
                              tf.constant(image))
    self.assertAllClose(self.evaluate(logits)[0],
                        -pooled[:2] / np.sqrt(1 + 1e-3), rtol=1e-6)

  def test_pooled_conv_net_default_is_relu_of_the_linear_logits(self):
    args = ((1, 28, 28), 10, [(3, 3, 16, 1), (5, 5, 32, 1)])
    default = pg.PooledConvNet(*args, affine_size=512, random_seed=0)
    linear = pg.PooledConvNet(*args, affine_size=512, random_seed=0,
                              logits_activation=False)
    rng = np.random.RandomState(6)
    values = [tf.constant(v) for v in test_util.feed_values(default, rng)]
    data = tf.constant(rng.rand(5, 28, 28, 1).astype(np.float32))
    default_logits, linear_logits = self.evaluate(
        [default.inference(values, data), linear.inference(values, data)])
    self.assertLess(linear_logits.min(), 0.0)
    self.assertGreater(linear_logits.max(), 0.0)
    self.assertAllClose(np.maximum(linear_logits, 0.0), default_logits,
                        rtol=1e-6, atol=1e-6)


class GradientCheckTest(tf.test.TestCase):
  """Analytic gradients against central finite differences in float64."""

  def _check(self, problem, data=None, labels=None, scale=1.0, seed=0,
             max_coords=40, rtol=2e-2, atol=2e-3):
    rng = np.random.RandomState(seed)
    evaluator = ObjectiveEvaluator(
        problem, None if data is None else tf.constant(data),
        None if labels is None else tf.constant(labels))
    values = test_util.feed_values(problem, rng, scale)
    analytic = evaluator.gradients(values)
    for k, value in enumerate(values):
      coords = rng.permutation(value.size)[:max_coords]

      def along(delta, k=k):
        shifted = [v.astype(np.float64) for v in values]
        shifted[k] = shifted[k] + delta.reshape(shifted[k].shape)
        return evaluator.value(shifted)

      for c in coords:
        step = np.zeros(value.size)
        eps = 1e-2 * max(1.0, abs(value.flat[c]))
        step[c] = eps
        numeric = (along(step) - along(-step)) / (2 * eps)
        self.assertAllClose(
            analytic[k].flat[c], numeric, rtol=rtol, atol=atol,
            msg="%s param %d coord %d" % (type(problem).__name__, k, c))

  def test_gradients_of_random_linear_problems(self):
    self._check(pg.Quadratic(5, random_seed=1))
    self._check(pg.Lasso(5, random_seed=1), seed=3)
    self._check(pg.Norm(5, random_seed=1, norm_power=2.5))
    self._check(pg.Rastrigin(3, random_seed=1), scale=0.1)
    self._check(pg.Bowl(5.0, angle=0.4, random_seed=1))

  def test_gradients_of_classifiers(self):
    rng = np.random.RandomState(7)
    data = rng.randn(8, 6).astype(np.float32)
    labels = rng.randint(0, 3, size=8).astype(np.int32)
    self._check(pg.FullyConnected(6, 3, hidden_sizes=(4,), random_seed=1),
                data, labels)
    self._check(pg.SoftmaxRegression(6, 3, random_seed=1), data, labels)
    binary = rng.randint(0, 2, size=8).astype(np.int32)
    self._check(pg.SoftmaxRegression(6, 2, random_seed=1), data, binary)

  def test_gradients_of_conv_nets(self):
    rng = np.random.RandomState(8)
    images = rng.rand(3, 6, 6, 1).astype(np.float32)
    labels = rng.randint(0, 3, size=3).astype(np.int32)
    self._check(pg.ConvNet((1, 6, 6), 3, [(3, 3, 2)],
                           activation=tf.nn.sigmoid, random_seed=1),
                images, labels, scale=0.5)
    self._check(pg.ConvNetOrig((1, 6, 6), 3, [(3, 3, 2)],
                               activation=tf.nn.tanh, random_seed=1),
                images, labels, scale=0.5)
    self._check(pg.PooledConvNet((1, 6, 6), 3, [(3, 3, 2)], affine_size=8,
                                 activation=tf.nn.sigmoid, mode="train",
                                 random_seed=1),
                images, labels, scale=0.5)

  def test_gradients_of_test_functions(self):
    for cls in (pg.Rosenbrock, pg.Beale, pg.LogSumExp, pg.Branin,
                pg.StyblinskiTang, pg.Michalewicz):
      self._check(cls(random_seed=1), scale=0.7)

  def test_gradients_of_toy_and_wrapper_problems(self):
    rng = np.random.RandomState(9)
    data = rng.randn(4, 5).astype(np.float32)
    self._check(pg.DependencyChain(4, random_seed=1))
    self._check(pg.OutwardSnake(5, random_seed=1), data)
    self._check(pg.SumOfQuadratics(5, random_seed=1), data)
    self._check(pg.ProjectionQuadratic(5, random_seed=1), data)
    quad = problem_spec.Spec(pg.Quadratic, (4,), {"random_seed": 2})
    self._check(pg.Rescale(quad, scale=3.0), scale=3.0)
    self._check(pg.LogObjective(quad))
    self._check(pg.SumTask([quad, problem_spec.Spec(pg.Booth, (), {})]))
    self._check(pg.MatMulAlgorithm(2, 6), rtol=5e-2)


class WrapperProblemsTest(tf.test.TestCase):

  def test_rescale_evaluates_inner_problem_at_shrunk_point(self):
    spec = problem_spec.Spec(pg.Quadratic, (3,), {"random_seed": 5})
    rescaled = pg.Rescale(spec, scale=4.0)
    x = np.random.RandomState(0).randn(3, 1).astype(np.float32)
    inner = ObjectiveEvaluator(pg.Quadratic(3, random_seed=5)).value([x])
    self.assertAllClose(ObjectiveEvaluator(rescaled).value([4.0 * x]), inner,
                        rtol=1e-5)
    init_inner = self.evaluate(rescaled.problem.init_tensors(seed=3))
    init_outer = self.evaluate(rescaled.init_tensors(seed=3))
    self.assertAllClose(init_outer[0], 4.0 * init_inner[0], rtol=1e-6)

  def test_sum_task_splits_parameters_in_order(self):
    specs = [problem_spec.Spec(pg.Booth, (), {}),
             problem_spec.Spec(pg.Matyas, (), {})]
    task = pg.SumTask(specs)
    self.assertEqual(task.param_shapes, [(2,), (2,)])
    booth = np.array([1., 3.], np.float32)  # Booth's minimum
    matyas = np.array([1., 2.], np.float32)
    self.assertAllClose(ObjectiveEvaluator(task).value([booth, matyas]),
                        0.26 * 5 - 0.48 * 2, rtol=1e-6)

  def test_log_objective_is_zero_at_zero(self):
    spec = problem_spec.Spec(pg.IsotropicQuadratic, ([(2,)], 1, 0.0), {})
    problem = pg.LogObjective(spec)
    evaluator = ObjectiveEvaluator(problem)
    self.assertAllClose(evaluator.value([np.zeros(2)]), 0., atol=1e-4)
    self.assertAllClose(evaluator.value([np.array([1., 1.])]),
                        np.log(2 + 1e-6) - np.log(1e-6), rtol=1e-5)

  def test_sparse_problem_zeroes_about_99_percent_of_entries(self):
    spec = problem_spec.Spec(pg.IsotropicQuadratic, ([(100, 100)], 1, 0.0),
                             {})
    problem = pg.SparseProblem(spec, random_seed=0)
    param = tf.ones([100, 100])
    grads = problem.gradients(problem.objective([param]), [param])
    self.assertIsInstance(grads, list)
    value = self.evaluate(grads[0])
    kept = value != 0
    self.assertAllClose(value[kept], 2 * np.ones(kept.sum()))
    self.assertBetween(kept.mean(), 0.005, 0.015)


class GradientNoiseTest(tf.test.TestCase):

  def test_noise_has_requested_stdev(self):
    problem = pg.Quadratic(200, random_seed=0, noise_stdev=0.5)
    x = tf.zeros([200, 1])
    clean = tf.gradients(problem.objective([x]), [x])[0]
    noisy = problem.gradients(problem.objective([x]), [x])[0]
    difference = self.evaluate(noisy - clean)
    self.assertBetween(np.std(difference), 0.45, 0.55)

  def test_noise_free_gradients_are_exact(self):
    problem = pg.Quadratic(4, random_seed=0)
    x = tf.ones([4, 1])
    objective = problem.objective([x])
    grads = problem.gradients(objective, [x])
    self.assertAllClose(self.evaluate(grads[0]),
                        problem.w.T.dot(problem.w.dot(np.ones((4, 1))) -
                                        problem.y), rtol=1e-5)

  def test_noisy_indexed_slices_keep_dense_shape(self):
    problem = pg.SparseSoftmaxRegression(3, 2, random_seed=0, noise_stdev=1.)
    params = [tf.ones(s) for s in problem.param_shapes]
    objective = problem.objective(params, tf.constant([[0., 1.]]),
                                  tf.constant([1]))
    grads = problem.gradients(objective, params)
    self.assertIsInstance(grads[0], tf.IndexedSlices)
    self.assertIsNotNone(grads[0].dense_shape)
    self.assertAllEqual(self.evaluate(tf.convert_to_tensor(grads[0])).shape,
                        (2, 3))


class InitializationTest(tf.test.TestCase):

  def test_fully_connected_init_has_stddev_001(self):
    values = self.evaluate(pg.FullyConnected(100, 10, hidden_sizes=(50,))
                           .init_tensors(seed=1))
    self.assertBetween(np.std(values[0]), 0.009, 0.011)

  def test_uniform_inits_stay_in_their_boxes(self):
    boxes = {pg.Rosenbrock: (-5, 10), pg.Ackley: (-32.768, 32.768),
             pg.Beale: (-4.5, 4.5), pg.Booth: (-10, 10),
             pg.Matyas: (-10, 10), pg.StyblinskiTang: (-5, 5),
             pg.Michalewicz: (0, np.pi)}
    for cls, (low, high) in boxes.items():
      tensors = [cls(random_seed=0).init_tensors() for _ in range(20)]
      values = np.concatenate(self.evaluate(tensors))
      self.assertTrue(np.all((values >= low) & (values < high)), cls)

  def test_branin_init_reuses_one_stream_as_the_original(self):
    x, y = self.evaluate(pg.Branin(random_seed=0).init_tensors(seed=11)[0])
    self.assertAllClose(y, x + 5.0, rtol=1e-5)

  def test_init_variables_live_under_parameters_scope(self):
    variables = pg.Quadratic(3, random_seed=0).init_variables(seed=1)
    self.assertEqual(variables[0].op.name, "parameters/Variable")
    fixed = pg.init_fixed_variables([np.ones((2, 2))])
    self.evaluate(tf.global_variables_initializer())
    self.assertAllEqual(self.evaluate(fixed[0]), np.ones((2, 2)))
    self.assertEqual(fixed[0].dtype.base_dtype, tf.float32)


if __name__ == "__main__":
  tf.test.main()
