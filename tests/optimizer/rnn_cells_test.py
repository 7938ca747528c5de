"""Tests of the RNN cells against numpy implementations of TF1's formulas."""

from tests import test_util  # pylint: disable=unused-import

import numpy as np
import tensorflow.compat.v1 as tf

from optimizer import rnn_cells


def _sigmoid(x):
  return 1. / (1. + np.exp(-x))


def _numpy_bias_gru(x, h, v, bias):
  """The original's BiasGRUCell; `v` maps variable names to values."""
  beta_r, beta_u, beta_c = np.split(bias, 3, axis=1)
  xh = np.concatenate([x, h], 1)
  gates = xh.dot(v["gates/Affine/Matrix"]) + v["gates/Affine/Bias"]
  r_lin, u_lin = np.split(gates, 2, axis=1)
  r, u = _sigmoid(r_lin + beta_r), _sigmoid(u_lin + beta_u)
  xrh = np.concatenate([x, r * h], 1)
  c = np.tanh(xrh.dot(v["candidate/Affine/Matrix"]) +
              v["candidate/Affine/Bias"] + beta_c)
  return u * h + (1 - u) * c


def _numpy_gru(x, h, v):
  """TF1's GRUCell: r first, u weighs the old state."""
  gates = _sigmoid(np.concatenate([x, h], 1).dot(v["gates/kernel"]) +
                   v["gates/bias"])
  r, u = np.split(gates, 2, axis=1)
  c = np.tanh(np.concatenate([x, r * h], 1).dot(v["candidate/kernel"]) +
              v["candidate/bias"])
  return u * h + (1 - u) * c


def _numpy_lstm(x, c, h, v, forget_bias=1.0):
  """TF1's LSTMCell: gate order i, j, f, o."""
  z = np.concatenate([x, h], 1).dot(v["kernel"]) + v["bias"]
  i, j, f, o = np.split(z, 4, axis=1)
  new_c = _sigmoid(f + forget_bias) * c + _sigmoid(i) * np.tanh(j)
  return _sigmoid(o) * np.tanh(new_c), new_c


def _numpy_basic_rnn(x, h, v):
  return np.tanh(np.concatenate([x, h], 1).dot(v["kernel"]) + v["bias"])


class CellTestCase(tf.test.TestCase):
  """Helpers: run a cell with randomised variables and read them back."""

  def setUp(self):
    super().setUp()
    self.rng = np.random.RandomState(0)

  def random(self, *shape):
    return self.rng.randn(*shape).astype(np.float32)

  def variables_by_name(self, prefix):
    """Variables' values keyed by their names relative to `prefix`/."""
    return {v.op.name[len(prefix) + 1:]: self.evaluate(v)
            for v in tf.global_variables()}

  def randomise_biases(self):
    """Random biases, so that gate-order mistakes change the output."""
    for v in tf.global_variables():
      if v.op.name.lower().endswith("bias"):
        self.evaluate(tf.assign(v, self.random(*v.get_shape().as_list())))


class BiasGRUCellTest(CellTestCase):

  def test_variables_have_the_original_names_and_shapes(self):
    cell = rnn_cells.BiasGRUCell(4, gate_bias_init=2.2)
    cell(tf.zeros([2, 3]), tf.zeros([2, 4]))
    self.assertEqual(
        {v.op.name: v.get_shape().as_list() for v in tf.global_variables()},
        {"BiasGRUCell/gates/Affine/Matrix": [7, 8],
         "BiasGRUCell/gates/Affine/Bias": [8],
         "BiasGRUCell/candidate/Affine/Matrix": [7, 4],
         "BiasGRUCell/candidate/Affine/Bias": [4]})
    self.evaluate(tf.global_variables_initializer())
    v = self.variables_by_name("BiasGRUCell")
    self.assertAllClose(v["gates/Affine/Bias"], np.full(8, 2.2))
    self.assertAllEqual(v["candidate/Affine/Bias"], np.zeros(4))

  def test_build_creates_the_variables_that_call_reuses(self):
    cell = rnn_cells.BiasGRUCell(4)
    cell.build(3)
    names = sorted(v.op.name for v in tf.global_variables())
    with tf.variable_scope(tf.get_variable_scope(), reuse=True):
      cell(tf.zeros([2, 3]), tf.zeros([2, 4]))
    self.assertEqual(sorted(v.op.name for v in tf.global_variables()), names)

  def test_one_step_matches_numpy_without_bias(self):
    x, h = self.random(5, 3), self.random(5, 4)
    cell = rnn_cells.BiasGRUCell(4, scale=0.5, gate_bias_init=2.2)
    out, state = cell(tf.constant(x), tf.constant(h))
    self.evaluate(tf.global_variables_initializer())
    self.randomise_biases()
    v = self.variables_by_name("BiasGRUCell")
    expected = _numpy_bias_gru(x, h, v, np.zeros([1, 12], np.float32))
    out, state = self.evaluate([out, state])
    self.assertAllClose(out, expected, rtol=1e-5, atol=1e-6)
    self.assertAllClose(state, expected, rtol=1e-5, atol=1e-6)

  def test_one_step_matches_numpy_with_injected_bias(self):
    x, h, bias = self.random(5, 3), self.random(5, 4), self.random(1, 12)
    cell = rnn_cells.BiasGRUCell(4, scale=0.5)
    out, _ = cell(tf.constant(x), tf.constant(h), bias=tf.constant(bias))
    self.evaluate(tf.global_variables_initializer())
    self.randomise_biases()
    v = self.variables_by_name("BiasGRUCell")
    self.assertAllClose(self.evaluate(out), _numpy_bias_gru(x, h, v, bias),
                        rtol=1e-5, atol=1e-6)
    unbiased = _numpy_bias_gru(x, h, v, np.zeros_like(bias))
    self.assertGreater(np.abs(self.evaluate(out) - unbiased).max(), 1e-3)


class TF1CellsTest(CellTestCase):

  def test_gru_cell_matches_numpy_and_tf1_initial_biases(self):
    x, h = self.random(5, 3), self.random(5, 4)
    out, state = rnn_cells.GRUCell(4)(tf.constant(x), tf.constant(h))
    self.assertEqual(
        {v.op.name: v.get_shape().as_list() for v in tf.global_variables()},
        {"gru_cell/gates/kernel": [7, 8], "gru_cell/gates/bias": [8],
         "gru_cell/candidate/kernel": [7, 4], "gru_cell/candidate/bias": [4]})
    self.evaluate(tf.global_variables_initializer())
    v = self.variables_by_name("gru_cell")
    self.assertAllEqual(v["gates/bias"], np.ones(8))
    self.assertAllEqual(v["candidate/bias"], np.zeros(4))
    self.randomise_biases()
    v = self.variables_by_name("gru_cell")
    out, state = self.evaluate([out, state])
    self.assertAllClose(out, _numpy_gru(x, h, v), rtol=1e-5, atol=1e-6)
    self.assertAllClose(state, out)

  def test_lstm_cell_matches_numpy_with_forget_bias_one(self):
    x, c, h = self.random(5, 3), self.random(5, 4), self.random(5, 4)
    cell = rnn_cells.LSTMCell(4)
    out, (new_c, new_h) = cell(tf.constant(x), rnn_cells.LSTMStateTuple(
        tf.constant(c), tf.constant(h)))
    self.assertEqual(
        {v.op.name: v.get_shape().as_list() for v in tf.global_variables()},
        {"lstm_cell/kernel": [7, 16], "lstm_cell/bias": [16]})
    self.evaluate(tf.global_variables_initializer())
    self.randomise_biases()
    v = self.variables_by_name("lstm_cell")
    expected_h, expected_c = _numpy_lstm(x, c, h, v)
    out, new_c, new_h = self.evaluate([out, new_c, new_h])
    self.assertAllClose(new_c, expected_c, rtol=1e-5, atol=1e-6)
    self.assertAllClose(new_h, expected_h, rtol=1e-5, atol=1e-6)
    self.assertAllClose(out, expected_h, rtol=1e-5, atol=1e-6)

  def test_basic_rnn_cell_matches_numpy(self):
    x, h = self.random(5, 3), self.random(5, 4)
    out, state = rnn_cells.BasicRNNCell(4)(tf.constant(x), tf.constant(h))
    self.assertEqual(
        {v.op.name: v.get_shape().as_list() for v in tf.global_variables()},
        {"basic_rnn_cell/kernel": [7, 4], "basic_rnn_cell/bias": [4]})
    self.evaluate(tf.global_variables_initializer())
    self.randomise_biases()
    v = self.variables_by_name("basic_rnn_cell")
    out, state = self.evaluate([out, state])
    self.assertAllClose(out, _numpy_basic_rnn(x, h, v), rtol=1e-5, atol=1e-6)
    self.assertAllClose(state, out)

  def test_kernels_start_glorot_uniform(self):
    rnn_cells.BasicRNNCell(300)(tf.zeros([1, 200]), tf.zeros([1, 300]))
    self.evaluate(tf.global_variables_initializer())
    kernel = self.variables_by_name("basic_rnn_cell")["kernel"]
    limit = np.sqrt(6. / (500 + 300))
    self.assertLessEqual(np.abs(kernel).max(), limit)
    self.assertNear(kernel.std(), limit / np.sqrt(3.), 2e-3)


class MultiRNNCellTest(CellTestCase):

  def test_stacks_cells_under_cell_k_scopes(self):
    x = self.random(5, 1)
    lstm_state = (self.random(5, 3), self.random(5, 3))
    gru_state = self.random(5, 2)
    cell = rnn_cells.MultiRNNCell([rnn_cells.LSTMCell(3),
                                   rnn_cells.GRUCell(2)])
    self.assertEqual(cell.output_size, 2)
    self.assertEqual(cell.state_size, ((3, 3), 2))
    out, (new_lstm, new_gru) = cell(
        tf.constant(x), (rnn_cells.LSTMStateTuple(*map(tf.constant,
                                                       lstm_state)),
                         tf.constant(gru_state)))
    self.assertEqual(
        sorted(v.op.name for v in tf.global_variables()),
        ["multi_rnn_cell/cell_0/lstm_cell/bias",
         "multi_rnn_cell/cell_0/lstm_cell/kernel",
         "multi_rnn_cell/cell_1/gru_cell/candidate/bias",
         "multi_rnn_cell/cell_1/gru_cell/candidate/kernel",
         "multi_rnn_cell/cell_1/gru_cell/gates/bias",
         "multi_rnn_cell/cell_1/gru_cell/gates/kernel"])
    self.evaluate(tf.global_variables_initializer())
    self.randomise_biases()
    lstm_v = self.variables_by_name("multi_rnn_cell/cell_0/lstm_cell")
    gru_v = self.variables_by_name("multi_rnn_cell/cell_1/gru_cell")
    h0, c0 = _numpy_lstm(x, lstm_state[0], lstm_state[1], lstm_v)
    h1 = _numpy_gru(h0, gru_state, gru_v)
    out, new_lstm, new_gru = self.evaluate([out, new_lstm, new_gru])
    self.assertAllClose(out, h1, rtol=1e-5, atol=1e-6)
    self.assertAllClose(new_gru, h1, rtol=1e-5, atol=1e-6)
    self.assertAllClose(new_lstm.c, c0, rtol=1e-5, atol=1e-6)
    self.assertAllClose(new_lstm.h, h0, rtol=1e-5, atol=1e-6)


class StatePackingTest(CellTestCase):

  def test_flat_state_size_sums_nested_sizes(self):
    self.assertEqual(rnn_cells.flat_state_size(rnn_cells.LSTMCell(5)), 10)
    self.assertEqual(rnn_cells.flat_state_size(rnn_cells.GRUCell(5)), 5)
    self.assertEqual(rnn_cells.flat_state_size(rnn_cells.BiasGRUCell(5)), 5)

  def test_lstm_state_packs_c_then_h_and_round_trips(self):
    cell = rnn_cells.LSTMCell(3)
    c, h = self.random(2, 3), self.random(2, 3)
    packed = rnn_cells.pack_state(cell, rnn_cells.LSTMStateTuple(
        tf.constant(c), tf.constant(h)))
    unpacked = rnn_cells.unpack_state(cell, packed)
    self.assertIsInstance(unpacked, rnn_cells.LSTMStateTuple)
    packed, unpacked = self.evaluate([packed, unpacked])
    self.assertAllEqual(packed, np.concatenate([c, h], 1))
    self.assertAllEqual(unpacked.c, c)
    self.assertAllEqual(unpacked.h, h)

  def test_int_state_packs_as_itself(self):
    cell = rnn_cells.GRUCell(3)
    h = self.random(2, 3)
    unpacked = rnn_cells.unpack_state(cell, tf.constant(h))
    self.assertAllEqual(self.evaluate(rnn_cells.pack_state(cell, unpacked)),
                        h)


class CellClassTest(tf.test.TestCase):

  def test_resolves_every_cell_name(self):
    for name in ("BiasGRUCell", "GRUCell", "LSTMCell", "BasicRNNCell"):
      self.assertIs(rnn_cells.cell_class(name), getattr(rnn_cells, name))

  def test_rejects_unknown_names(self):
    with self.assertRaisesRegex(ValueError, "NASCell"):
      rnn_cells.cell_class("NASCell")


if __name__ == "__main__":
  tf.test.main()
