"""Tests of optimizer/utils.py against numpy on small arrays."""

from tests import test_util  # pylint: disable=unused-import

import numpy as np
import tensorflow.compat.v1 as tf

from optimizer import utils


def _numpy_new_mean_squared(grad, decay, ms):
  d = np.zeros_like(decay) if np.all(ms == 0) else decay
  return (1 - d) * (grad**2 + 1e-12) + d * ms


class ElementwiseTest(tf.test.TestCase):

  def test_make_finite_replaces_inf_and_nan_only(self):
    x = tf.constant([1., np.inf, -np.inf, np.nan, -2.])
    self.assertAllEqual(self.evaluate(utils.make_finite(x, tf.zeros_like(x))),
                        [1., 0., 0., 0., -2.])

  def test_make_finite_takes_replacement_elementwise(self):
    x = tf.constant([[np.nan, 3.], [4., np.inf]])
    replacement = tf.constant([[10., 20.], [30., 40.]])
    self.assertAllEqual(self.evaluate(utils.make_finite(x, replacement)),
                        [[10., 3.], [4., 40.]])

  def test_asinh_matches_numpy_including_large_negative_inputs(self):
    values = np.array([-1e5, -1e4, -1e3, -3., -0.5, 0., 1e-4, 0.5, 3., 1e3,
                       1e5], np.float32)
    self.assertAllClose(self.evaluate(utils.asinh(tf.constant(values))),
                        np.arcsinh(values.astype(np.float64)), rtol=1e-6)


class AffineTest(tf.test.TestCase):

  def test_variables_are_matrix_and_bias_under_the_scope(self):
    x = tf.ones([2, 3])
    y = tf.ones([2, 4])
    out = utils.affine([x, y], 5, scope="Readout")
    self.assertEqual(out.get_shape().as_list(), [2, 5])
    self.assertEqual({v.op.name: v.get_shape().as_list()
                      for v in tf.global_variables()},
                     {"Readout/Matrix": [7, 5], "Readout/Bias": [5]})

  def test_without_bias_creates_only_the_matrix(self):
    utils.affine(tf.ones([2, 3]), 4, include_bias=False)
    self.assertEqual([v.op.name for v in tf.global_variables()],
                     ["Affine/Matrix"])

  def test_computes_concatenated_inputs_times_matrix_plus_bias(self):
    x = np.array([[1., 2.], [3., -1.]], np.float32)
    y = np.array([[0.5], [2.]], np.float32)
    out = utils.affine([tf.constant(x), tf.constant(y)], 2, bias_init=0.25)
    self.evaluate(tf.global_variables_initializer())
    matrix = self.evaluate(tf.global_variables()[0])
    expected = np.concatenate([x, y], 1).dot(matrix) + 0.25
    self.assertAllClose(self.evaluate(out), expected)

  def test_matrix_init_has_mean_and_scaled_std(self):
    utils.affine(tf.ones([1, 400]), 500, scale=2.0, vec_mean=0.5,
                 random_seed=1)
    self.evaluate(tf.global_variables_initializer())
    matrix, bias = self.evaluate(tf.global_variables())
    self.assertNear(matrix.mean(), 0.5, 2e-3)
    self.assertNear(matrix.std(), 2.0 / np.sqrt(400), 1e-3)
    self.assertAllEqual(bias, np.zeros(500))

  def test_project_applies_weights_bias_and_activation(self):
    x = np.array([[1., -2.]], np.float32)
    w = np.array([[2.], [1.]], np.float32)
    out = utils.project(tf.constant(x), tf.constant(w), bias=0.5,
                        activation=tf.sigmoid)
    self.assertAllClose(self.evaluate(out), 1 / (1 + np.exp(-0.5)) * np.ones(
        [1, 1]))


class MeanSquaredTest(tf.test.TestCase):

  def test_first_step_ignores_decay_when_every_ms_is_zero(self):
    g = np.array([[1.], [-2.], [3.]], np.float32)
    decay = np.full([3, 1], 0.9, np.float32)
    ms = np.zeros([3, 1], np.float32)
    out = self.evaluate(utils.new_mean_squared(g, decay, ms))
    self.assertAllClose(out, g**2 + 1e-12)
    self.assertAllClose(out, _numpy_new_mean_squared(g, decay, ms))

  def test_later_steps_decay_towards_the_squared_gradient(self):
    g = np.array([[1.], [-2.], [3.]], np.float32)
    decay = np.array([[0.9], [0.5], [0.]], np.float32)
    ms = np.array([[4.], [0.], [1.]], np.float32)
    out = self.evaluate(utils.new_mean_squared(g, decay, ms))
    self.assertAllClose(out, [[0.1 * 1 + 0.9 * 4], [0.5 * 4], [9.]])
    self.assertAllClose(out, _numpy_new_mean_squared(g, decay, ms))

  def _run_with_decay(self, decay):
    fed = tf.placeholder(tf.float32, [2, 1])
    out = utils.new_mean_squared(tf.ones([2, 1]), fed, tf.ones([2, 1]))
    with self.cached_session() as sess:
      return sess.run(out, {fed: decay})

  def test_decay_above_one_fails_the_assertion(self):
    self.assertAllClose(self._run_with_decay([[0.5], [1.]]), np.ones([2, 1]))
    with self.assertRaises(tf.errors.InvalidArgumentError):
      self._run_with_decay([[0.5], [1.5]])

  def test_negative_decay_fails_the_assertion(self):
    with self.assertRaises(tf.errors.InvalidArgumentError):
      self._run_with_decay([[-0.1], [0.]])

  def test_rms_scaling_returns_asinh_of_normalised_gradient(self):
    g = np.array([[0.5, -3.], [2., 0.]], np.float32)
    decay = np.full([4, 1], 0.75, np.float32)
    ms = np.array([[1.], [2.], [0.5], [4.]], np.float32)
    scaled, new_ms = self.evaluate(utils.rms_scaling(g, decay, ms))
    expected_ms = _numpy_new_mean_squared(g.reshape(-1, 1), decay, ms)
    self.assertAllClose(new_ms, expected_ms)
    self.assertAllClose(
        scaled, np.arcsinh(g.reshape(-1, 1) / np.sqrt(expected_ms + 1e-16)))


class SparseHelpersTest(tf.test.TestCase):

  def test_accumulate_sparse_gradients_sums_duplicate_indices(self):
    grad = tf.IndexedSlices(
        tf.constant([[1., 2.], [3., 4.], [5., 6.], [7., 8.]]),
        tf.constant([3, 0, 3, 2]), tf.constant([5, 2]))
    indices, values = self.evaluate(utils.accumulate_sparse_gradients(grad))
    as_dict = {i: v.tolist() for i, v in zip(indices, values)}
    self.assertEqual(as_dict, {3: [6., 8.], 0: [3., 4.], 2: [7., 8.]})
    self.assertLen(indices, 3)

  def test_slice_tensor_gathers_rows_of_a_vector_param(self):
    dense = np.arange(8, dtype=np.float32).reshape(4, 2)
    out = utils.slice_tensor(tf.constant(dense), tf.constant([2, 0]), [4])
    self.assertAllEqual(self.evaluate(out), dense[[2, 0]])

  def test_slice_tensor_gathers_all_columns_of_selected_rows(self):
    # State of a [4, 3] parameter: one row per coordinate, 2 columns.
    dense = np.arange(24, dtype=np.float32).reshape(12, 2)
    out = utils.slice_tensor(tf.constant(dense), tf.constant([3, 1]), [4, 3])
    expected = dense.reshape(4, 3, 2)[[3, 1]].reshape(-1, 2)
    self.assertAllEqual(self.evaluate(out), expected)

  def test_stack_tensor_scatters_rows_and_zeros_the_rest(self):
    dense = np.arange(12, dtype=np.float32).reshape(12, 1)
    slices = np.array([[10.], [11.], [12.], [20.], [21.], [22.]], np.float32)
    out = utils.stack_tensor(tf.constant(slices), tf.constant([2, 0]),
                             tf.constant(dense), [4, 3])
    expected = np.zeros([4, 3, 1], np.float32)
    expected[2] = slices[:3]
    expected[0] = slices[3:]
    self.assertAllEqual(self.evaluate(out), expected.reshape(12, 1))

  def test_stack_tensor_inverts_slice_tensor_on_the_selected_rows(self):
    dense = np.random.RandomState(0).randn(5, 3).astype(np.float32)
    indices = tf.constant([4, 1], tf.int64)
    rows = utils.slice_tensor(tf.constant(dense), indices, [5])
    out = self.evaluate(utils.stack_tensor(rows, indices, tf.constant(dense),
                                           [5]))
    expected = np.zeros_like(dense)
    expected[[4, 1]] = dense[[4, 1]]
    self.assertAllEqual(out, expected)

  def test_update_slices_replaces_only_the_selected_rows(self):
    dense = np.arange(8, dtype=np.float32).reshape(4, 2)
    slices = np.array([[-1., -2.], [-3., -4.]], np.float32)
    out = utils.update_slices(tf.constant(slices), tf.constant([3, 1]),
                              tf.constant(dense), [4])
    expected = dense.copy()
    expected[[3, 1]] = slices
    self.assertAllEqual(self.evaluate(out), expected)

  def test_update_slices_with_matrix_head_dims(self):
    dense = np.arange(24, dtype=np.float32).reshape(12, 2)
    slices = -np.arange(6, dtype=np.float32).reshape(3, 2) - 1
    out = utils.update_slices(tf.constant(slices), tf.constant([2]),
                              tf.constant(dense), [4, 3])
    expected = dense.reshape(4, 3, 2).copy()
    expected[2] = slices
    self.assertAllEqual(self.evaluate(out), expected.reshape(12, 2))

  def test_update_slices_accepts_dynamic_head_dims(self):
    param = tf.zeros([4, 3])
    dense = np.arange(12, dtype=np.float32).reshape(12, 1)
    slices = np.full([3, 1], 7., np.float32)
    out = utils.update_slices(tf.constant(slices), tf.constant([1]),
                              tf.constant(dense), tf.shape(param))
    expected = dense.reshape(4, 3, 1).copy()
    expected[1] = 7.
    self.assertAllEqual(self.evaluate(out), expected.reshape(12, 1))


if __name__ == "__main__":
  tf.test.main()
