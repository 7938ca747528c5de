"""Tests of CoordinatewiseRNN: variables, numpy-checked steps, both modes."""

from tests import test_util  # pylint: disable=unused-import

import numpy as np
import tensorflow.compat.v1 as tf

from meta_training import unroll as unroll_lib
from optimizer import coordinatewise_rnn
from optimizer import rnn_cells
from problems import problem_generator as pg


def _sigmoid(x):
  return 1. / (1. + np.exp(-x))


def _numpy_cell(kind, x, state, v):
  """One step of a TF1 cell; `state` is the cell's packed [n, width] block.

  Returns:
    (output, new packed state).
  """
  if kind == "lstm_cell":
    size = state.shape[1] // 2
    c, h = state[:, :size], state[:, size:]
    z = np.concatenate([x, h], 1).dot(v["kernel"]) + v["bias"]
    i, j, f, o = np.split(z, 4, axis=1)
    new_c = _sigmoid(f + 1.) * c + _sigmoid(i) * np.tanh(j)
    new_h = _sigmoid(o) * np.tanh(new_c)
    return new_h, np.concatenate([new_c, new_h], 1)
  if kind == "gru_cell":
    gates = _sigmoid(np.concatenate([x, state], 1).dot(v["gates/kernel"]) +
                     v["gates/bias"])
    r, u = np.split(gates, 2, axis=1)
    c = np.tanh(np.concatenate([x, r * state], 1).dot(v["candidate/kernel"]) +
                v["candidate/bias"])
    new_h = u * state + (1 - u) * c
    return new_h, new_h
  new_h = np.tanh(np.concatenate([x, state], 1).dot(v["kernel"]) + v["bias"])
  return new_h, new_h


class NumpyCoordinatewiseRNN(object):
  """The cRNN update in float64, from the variables' values.

  Args:
    values: dict variable name (without "LOL/") -> value.
    kind: the cells' scope name ("lstm_cell", "gru_cell", "basic_rnn_cell").
    widths: packed state width of each stacked cell.
  """

  def __init__(self, values, kind, widths):
    self.values = {k: v.astype(np.float64) for k, v in values.items()}
    self.kind = kind
    self.widths = widths

  def initial_state(self, n, lr=1.):
    return {"rms": np.ones([n, 1]), "decay": np.ones([n, 1]),
            "learning_rate": np.full([n, 1], lr),
            "rnn": np.tile(self.values["init_vector"], [n, 1])}

  def step(self, x, g, state):
    """Returns (new x, new state) for gradient `g` (shaped like x)."""
    v = self.values
    g = g.reshape(-1, 1)
    decay, rms = state["decay"], state["rms"]
    ms = decay * rms + (1 - decay) * (g**2 + 1e-12)
    out = np.arcsinh(g / np.sqrt(ms + 1e-16))
    blocks = np.split(state["rnn"], np.cumsum(self.widths)[:-1], axis=1)
    new_blocks = []
    for k, block in enumerate(blocks):
      prefix = "multi_rnn_cell/cell_%d/%s/" % (k, self.kind)
      cell_vars = {name[len(prefix):]: value for name, value in v.items()
                   if name.startswith(prefix)}
      out, new_block = _numpy_cell(self.kind, out, block, cell_vars)
      new_blocks.append(new_block)
    direction = out.dot(v["update_weights"])
    lr = state["learning_rate"] * 2 * _sigmoid(
        out.dot(v["learning_rate_weights"]) + v["learning_rate_bias"])
    new_state = {
        "rms": ms,
        "decay": _sigmoid(out.dot(v["decay_weights"]) + v["decay_bias"]),
        "learning_rate": lr,
        "rnn": np.concatenate(new_blocks, 1)}
    return x - (lr * direction).reshape(x.shape), new_state


def _lol_values(sess):
  return {v.op.name[len("LOL/"):]: sess.run(v)
          for v in tf.global_variables("LOL")}


class ConstructionTest(tf.test.TestCase):

  def _shapes(self):
    return {v.op.name: v.get_shape().as_list()
            for v in tf.global_variables()}

  def test_lstm_variables_have_the_expected_names_and_shapes(self):
    coordinatewise_rnn.CoordinatewiseRNN([5, 4], "LSTMCell")
    self.assertEqual(self._shapes(), {
        "LOL/update_weights": [4, 1],
        "LOL/decay_weights": [4, 1],
        "LOL/decay_bias": [1],
        "LOL/learning_rate_weights": [4, 1],
        "LOL/learning_rate_bias": [1],
        "LOL/init_vector": [1, 2 * 5 + 2 * 4],
        "LOL/multi_rnn_cell/cell_0/lstm_cell/kernel": [1 + 5, 4 * 5],
        "LOL/multi_rnn_cell/cell_0/lstm_cell/bias": [4 * 5],
        "LOL/multi_rnn_cell/cell_1/lstm_cell/kernel": [5 + 4, 4 * 4],
        "LOL/multi_rnn_cell/cell_1/lstm_cell/bias": [4 * 4]})

  def test_gru_cell_class_works_and_has_int_state(self):
    coordinatewise_rnn.CoordinatewiseRNN([3], rnn_cells.GRUCell)
    shapes = self._shapes()
    self.assertEqual(shapes["LOL/init_vector"], [1, 3])
    self.assertEqual(shapes["LOL/multi_rnn_cell/cell_0/gru_cell/gates/kernel"],
                     [4, 6])
    self.assertEqual(
        shapes["LOL/multi_rnn_cell/cell_0/gru_cell/candidate/kernel"], [4, 3])

  def test_cell_name_and_class_give_the_same_variables(self):
    names = []
    for cell_cls in ("BasicRNNCell", rnn_cells.BasicRNNCell):
      with tf.Graph().as_default():
        coordinatewise_rnn.CoordinatewiseRNN([3, 2], cell_cls)
        names.append(sorted(v.op.name for v in tf.global_variables()))
    self.assertEqual(names[0], names[1])
    self.assertIn("LOL/multi_rnn_cell/cell_1/basic_rnn_cell/kernel", names[0])

  def test_constant_decay_and_output_scale_create_no_readouts(self):
    coordinatewise_rnn.CoordinatewiseRNN([3], "GRUCell", learnable_decay=False,
                                         dynamic_output_scale=False)
    readouts = [name for name in self._shapes()
                if "multi_rnn_cell" not in name]
    self.assertCountEqual(readouts, ["LOL/update_weights", "LOL/init_vector"])

  def test_initial_values(self):
    optimizer = coordinatewise_rnn.CoordinatewiseRNN(
        [256], "BasicRNNCell", zero_init_lr_weights=True,
        crnn_default_decay_var_init=1.5, crnn_rnn_readout_scale=0.8)
    self.evaluate(tf.global_variables_initializer())
    self.assertAllClose(self.evaluate(optimizer.decay_bias), [1.5])
    self.assertAllEqual(self.evaluate(optimizer.lr_bias), [0.])
    self.assertAllEqual(self.evaluate(optimizer.lr_weights),
                        np.zeros([256, 1]))
    update_weights = self.evaluate(optimizer.update_weights)
    self.assertNear(update_weights.std(), 0.8 / 16, 0.2 * 0.8 / 16)
    init_vector = self.evaluate(optimizer.init_vector)
    self.assertTrue(np.all(np.abs(init_vector) <= 1.))

  def test_seed_gives_repeatable_and_distinct_initial_values(self):
    runs = []
    for _ in range(2):
      with tf.Graph().as_default():
        coordinatewise_rnn.CoordinatewiseRNN([4], "LSTMCell", random_seed=7)
        with tf.Session() as sess:
          sess.run(tf.global_variables_initializer())
          runs.append(_lol_values(sess))
    for name in runs[0]:
      self.assertAllEqual(runs[0][name], runs[1][name], msg=name)
    self.assertNotAllClose(runs[0]["update_weights"],
                           runs[0]["decay_weights"])
    self.assertNotAllClose(runs[0]["update_weights"],
                           runs[0]["learning_rate_weights"])

  def test_invalid_arguments(self):
    with self.assertRaises(ValueError):
      coordinatewise_rnn.CoordinatewiseRNN([3], "GRUCell",
                                           init_lr_range=(1., 2., 3.))
    with self.assertRaises(ValueError):
      coordinatewise_rnn.CoordinatewiseRNN([3], "GRUCell",
                                           init_lr_range=(2., 1.))
    with self.assertRaises(ValueError):
      coordinatewise_rnn.CoordinatewiseRNN([3], "NoSuchCell")
    with self.assertRaises(TypeError):
      coordinatewise_rnn.CoordinatewiseRNN([3], "GRUCell", level_sizes=[3])

  def test_initial_learning_rates_lie_in_the_range(self):
    optimizer = coordinatewise_rnn.CoordinatewiseRNN(
        [3], "GRUCell", init_lr_range=(1e-3, 1e-1))
    lr = self.evaluate(
        optimizer._initialize_state(tf.zeros([50, 4]))["learning_rate"])
    self.assertEqual(lr.shape, (200, 1))
    self.assertTrue(np.all((lr >= 1e-3) & (lr <= 1e-1)))
    self.assertGreater(lr.std(), 0.)


class ApplyModeTest(tf.test.TestCase):

  def _check_steps_match_numpy(self, cell_sizes, cell_name, kind,
                               use_resource=False, steps=3):
    g = np.array([[0.3, -1.2], [2.5, 0.05]], np.float32)
    x0 = np.array([[1., -1.], [0.5, 2.]], np.float32)
    var = tf.get_variable("x", initializer=x0, use_resource=use_resource)
    optimizer = coordinatewise_rnn.CoordinatewiseRNN(cell_sizes, cell_name)
    update = optimizer.minimize(tf.reduce_sum(g * var))
    slots = {key: optimizer.get_slot(var, key)
             for key in ("rms", "decay", "learning_rate", "rnn")}
    with self.cached_session() as sess:
      sess.run(tf.global_variables_initializer())
      reference = NumpyCoordinatewiseRNN(_lol_values(sess), kind,
                                         optimizer.state_widths)
      x, state = x0.astype(np.float64), reference.initial_state(4)
      for t in range(steps):
        sess.run(update)
        x, state = reference.step(x, g.astype(np.float64), state)
        self.assertAllClose(sess.run(var), x, rtol=1e-5, atol=1e-6,
                            msg="step %d" % t)
        for key, slot in slots.items():
          self.assertAllClose(sess.run(slot), state[key], rtol=1e-5,
                              atol=1e-6, msg="%s after step %d" % (key, t))

  def test_lstm_stack_steps_match_numpy(self):
    self._check_steps_match_numpy([3, 2], "LSTMCell", "lstm_cell")

  def test_gru_steps_match_numpy(self):
    self._check_steps_match_numpy([3], "GRUCell", "gru_cell")

  def test_basic_rnn_steps_match_numpy(self):
    self._check_steps_match_numpy([4, 2], "BasicRNNCell", "basic_rnn_cell")

  def test_steps_of_resource_variables_match_numpy(self):
    self._check_steps_match_numpy([3], "GRUCell", "gru_cell",
                                  use_resource=True, steps=2)

  def test_first_step_keeps_rms_one_and_feeds_asinh_of_gradient(self):
    # With rms = decay = 1 the first mean square stays 1, so the RNN input
    # is asinh(g): a BasicRNN of size 1 with a unit kernel on the input and
    # zero elsewhere outputs tanh(asinh(g)).
    g = np.array([0.5, -3.], np.float32)
    var = tf.Variable([0., 0.])
    optimizer = coordinatewise_rnn.CoordinatewiseRNN(
        [1], "BasicRNNCell", dynamic_output_scale=False)
    update = optimizer.minimize(tf.reduce_sum(g * var))
    with self.cached_session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run([tf.assign(tf.global_variables(
          "LOL/multi_rnn_cell/cell_0/basic_rnn_cell/kernel")[0], [[1.], [0.]]),
                tf.assign(optimizer.update_weights, [[1.]])])
      sess.run(update)
      self.assertAllClose(sess.run(optimizer.get_slot(var, "rms")),
                          np.ones([2, 1]))
      self.assertAllClose(sess.run(var), -np.tanh(np.arcsinh(g)), rtol=1e-6)
      self.assertAllClose(sess.run(optimizer.get_slot(var, "rnn")),
                          np.tanh(np.arcsinh(g)).reshape(2, 1), rtol=1e-6)

  def test_constant_output_scale_keeps_the_learning_rate(self):
    var = tf.Variable(np.ones([3], np.float32))
    optimizer = coordinatewise_rnn.CoordinatewiseRNN(
        [4], "LSTMCell", init_lr_range=(0.3, 0.3), dynamic_output_scale=False)
    update = optimizer.minimize(tf.reduce_sum(tf.square(var)))
    with self.cached_session() as sess:
      sess.run(tf.global_variables_initializer())
      for _ in range(3):
        sess.run(update)
      lr = sess.run(optimizer.get_slot(var, "learning_rate"))
    self.assertAllClose(lr, np.full([3, 1], 0.3), rtol=1e-7)

  def test_constant_decay_is_the_sigmoid_of_the_default_bias(self):
    var = tf.Variable(np.ones([3], np.float32))
    optimizer = coordinatewise_rnn.CoordinatewiseRNN(
        [4], "GRUCell", learnable_decay=False)
    update = optimizer.minimize(tf.reduce_sum(tf.square(var)))
    with self.cached_session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(update)
      decay = sess.run(optimizer.get_slot(var, "decay"))
    self.assertAllClose(decay, np.full([3, 1], _sigmoid(2.2)))

  def _check_sparse_matches_dense(self, use_resource):
    sparse_var, dense_var, sparse_loss, dense_loss, x0 = (
        test_util.sparse_and_dense_losses(use_resource))
    self.assertIsInstance(tf.gradients(sparse_loss, sparse_var)[0],
                          tf.IndexedSlices)
    optimizer = coordinatewise_rnn.CoordinatewiseRNN([4, 3], "LSTMCell")
    update = tf.group(optimizer.minimize(sparse_loss, var_list=[sparse_var]),
                      optimizer.minimize(dense_loss, var_list=[dense_var]))
    keys = ("rms", "decay", "learning_rate", "rnn")
    with self.cached_session() as sess:
      sess.run(tf.global_variables_initializer())
      fresh = sess.run(optimizer._initialize_state(tf.constant(x0)))
      for _ in range(3):
        sess.run(update)
      sparse, dense = sess.run([sparse_var, dense_var])
      sparse_state, dense_state = sess.run(
          [{key: optimizer.get_slot(v, key) for key in keys}
           for v in (sparse_var, dense_var)])
    touched = [0, 3]
    untouched = [1, 2, 4]
    self.assertAllClose(sparse[touched], dense[touched], rtol=1e-5)
    self.assertGreater(np.abs(sparse[touched] - x0[touched]).min(), 1e-4)
    self.assertAllEqual(sparse[untouched], x0[untouched])
    for key in keys:
      # One row of state per coordinate: [5 * 2, width] -> [5, 2, width].
      sparse_rows, dense_rows, fresh_rows = (
          s.reshape(5, 2, -1) for s in (sparse_state[key], dense_state[key],
                                        fresh[key]))
      self.assertAllClose(sparse_rows[touched], dense_rows[touched],
                          rtol=1e-5, atol=1e-6, msg=key)
      self.assertAllEqual(sparse_rows[untouched], fresh_rows[untouched],
                          msg=key)

  def test_sparse_gradients_update_only_touched_rows(self):
    self._check_sparse_matches_dense(use_resource=False)

  def test_sparse_gradients_of_resource_variables(self):
    self._check_sparse_matches_dense(use_resource=True)


class TrainModeTest(tf.test.TestCase):

  def _meta_gradients(self, cell_cls):
    problem = pg.Quadratic(3, random_seed=4)
    optimizer = coordinatewise_rnn.CoordinatewiseRNN(
        [4, 3], cell_cls, init_lr_range=(0.05, 0.05), random_seed=1)
    out = unroll_lib.build_unroll(optimizer, problem)
    variables = tf.trainable_variables("LOL")
    grads = tf.gradients(out.meta_objective, variables)
    feed = {out.objective_weights: np.ones(3) / 3, out.first_unroll: True,
            out.reset_state: True,
            out.initial_params[0]: np.ones([3, 1], np.float32)}
    with self.cached_session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      metaobj, objectives, grads = sess.run(
          [out.meta_objective, out.problem_objectives, grads], feed)
    return metaobj, objectives, {v.op.name: g
                                 for v, g in zip(variables, grads)}

  def _check_train_mode(self, cell_cls, num_cell_variables):
    metaobj, objectives, grads = self._meta_gradients(cell_cls)
    self.assertTrue(np.isfinite(metaobj))
    self.assertLen(objectives, 4)
    self.assertLen(grads, 6 + num_cell_variables)
    for name, grad in grads.items():
      self.assertIsNotNone(grad, msg=name)
      self.assertTrue(np.all(np.isfinite(grad)), msg=name)
      self.assertTrue(np.any(grad != 0), msg=name)

  def test_lstm_meta_gradients_reach_every_variable(self):
    self._check_train_mode("LSTMCell", 4)

  def test_gru_meta_gradients_reach_every_variable(self):
    self._check_train_mode(rnn_cells.GRUCell, 8)

  def test_basic_rnn_meta_gradients_reach_every_variable(self):
    self._check_train_mode("BasicRNNCell", 4)

  def test_train_creates_no_new_meta_variables(self):
    optimizer = coordinatewise_rnn.CoordinatewiseRNN([3], "GRUCell")
    before = [v.op.name for v in tf.global_variables()]
    unroll_lib.build_unroll(optimizer, pg.Quadratic(2, random_seed=0))
    unroll_lib.build_unroll(optimizer, pg.Quadratic(2, random_seed=1))
    self.assertEqual([v.op.name for v in tf.global_variables()], before)


if __name__ == "__main__":
  tf.test.main()
