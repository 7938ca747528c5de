"""Tests of the packed step against the per-tensor HierarchicalRNN.

The per-tensor path (`HierarchicalRNN._compute_updates`, which
tests/optimizer/hierarchical_rnn_test.py checks against numpy) is the
reference: the packed step, plain or compiled with XLA, cut into any number
of chunks, must give the same steps and states to float32 rounding, and in
meta-training (`train`) the same unroll outputs and meta-gradients.
"""

from tests import test_util

from absl.testing import parameterized
import numpy as np
import tensorflow.compat.v1 as tf

from optimizer import hierarchical_rnn
from optimizer import hrnn_packed
from problems import problem_generator as pg

SHAPES = [(7, 5), (5,), (3, 2, 2), (1,)]

CONFIGS = {
    "entry_points": dict(use_problem_lr_mean=True, use_gradient_shortcut=True,
                         use_grad_products=True),
    "defaults": {},
    "one_level": dict(level_sizes=[6]),
    "two_levels": dict(level_sizes=[6, 7]),
    "every_feature": dict(use_extreme_indicator=True, use_lr_shortcut=True,
                          use_multiple_scale_decays=True,
                          use_gradient_shortcut=True, use_grad_products=True,
                          global_rnn_sees_all_tensors=True),
    "fixed_output_scale": dict(dynamic_output_scale=False,
                               use_relative_lr=False),
    "one_scale": dict(num_gradient_scales=1),
    "constant_decays": dict(learnable_decay=False),
}


def _optimizer(config):
  kwargs = dict(CONFIGS[config])
  level_sizes = kwargs.pop("level_sizes", [6, 7, 8])
  return hierarchical_rnn.HierarchicalRNN(level_sizes, random_seed=1,
                                          zero_init_lr_weights=False,
                                          **kwargs)


def _random_state(optimizer, n, rng, fresh_mean_squares=False):
  """A per-tensor state dict (numpy) with every entry away from its init."""
  s_count = optimizer.num_gradient_scales
  state = {
      "parameter": rng.uniform(-1, 1, (n, optimizer.level_sizes[0])),
      "scl_decay": rng.uniform(0.05, 0.95, (n, 1)),
      "inp_decay": rng.uniform(0.05, 0.95, (n, 1)),
  }
  if optimizer.dynamic_output_scale:
    state["log_learning_rate"] = rng.uniform(-8., -3., (n, 1))
  for i in range(s_count):
    state["grad_accum%d" % (i + 1)] = rng.randn(n, 1)
    state["ms%d" % (i + 1)] = (np.zeros((n, 1)) if fresh_mean_squares
                               else rng.uniform(0.1, 2., (n, 1)))
  if optimizer.num_layers > 1:
    state["layer"] = rng.uniform(-1, 1, (1, optimizer.level_sizes[1]))
  return {key: value.astype(np.float32) for key, value in state.items()}


class PackedStepTest(test_util.TestCase, parameterized.TestCase):

  @parameterized.parameters(*sorted(CONFIGS))
  def test_matches_the_per_tensor_update(self, config):
    self._check_against_per_tensor(config, xla=False, chunks=1)

  @parameterized.parameters("entry_points", "every_feature", "one_level")
  def test_matches_the_per_tensor_update_in_chunks(self, config):
    self._check_against_per_tensor(config, xla=False, chunks=3)

  @parameterized.parameters("entry_points", "defaults", "fixed_output_scale")
  def test_matches_the_per_tensor_update_compiled_with_xla(self, config):
    self._check_against_per_tensor(config, xla=True, chunks=2)

  def _check_against_per_tensor(self, config, xla, chunks):
    rng = np.random.RandomState(0)
    optimizer = _optimizer(config)
    params = [tf.constant(rng.randn(*shape).astype(np.float32))
              for shape in SHAPES]
    grads = [tf.constant(rng.randn(*shape).astype(np.float32))
             for shape in SHAPES]
    # The second tensor starts fresh: its mean squares take decay 0.
    states = [_random_state(optimizer, int(np.prod(shape)), rng,
                            fresh_mean_squares=(t == 1))
              for t, shape in enumerate(SHAPES)]
    global_state = rng.uniform(-1, 1, (1, optimizer.level_sizes[-1])).astype(
        np.float32)

    tensors = [{key: tf.constant(value) for key, value in state.items()}
               for state in states]
    for state, param in zip(tensors, params):
      state["true_param"] = param
    global_list = ([tf.constant(global_state)]
                   if optimizer.num_layers == 3 else [])
    new_params, new_states, new_global, _, _ = optimizer._compute_updates(
        params, grads, tensors, global_list)
    reference_steps = [p - q for p, q in zip(params, new_params)]

    packed = [hrnn_packed.pack_state(optimizer, state) for state in tensors]
    layers = ([state["layer"] for state in tensors]
              if optimizer.num_layers > 1 else [None] * len(SHAPES))
    steps, new_packed, new_layers, packed_global = hrnn_packed.packed_step(
        optimizer, params, grads, packed, layers,
        global_list[0] if global_list else None, xla=xla, chunks=chunks)
    unpacked = [hrnn_packed.unpack_state(optimizer, p) for p in new_packed]

    self.evaluate(tf.global_variables_initializer())
    if optimizer.num_layers == 1:
      new_layers = []
    expected, actual = self.evaluate(
        [(reference_steps, new_states, new_global),
         (steps, unpacked, new_layers,
          [] if packed_global is None else packed_global)])
    # Steps are sums with cancellation: entries near zero are compared on
    # the scale of the largest step.
    scale = max(np.max(np.abs(step)) for step in expected[0])
    for t in range(len(SHAPES)):
      self.assertEqual(actual[0][t].shape, SHAPES[t])
      self.assertAllClose(actual[0][t], expected[0][t], rtol=1e-4,
                          atol=1e-5 * scale, msg="step of tensor %d" % t)
      for key, value in actual[1][t].items():
        self.assertAllClose(value, expected[1][t][key], rtol=1e-4, atol=1e-5,
                            msg="%s of tensor %d" % (key, t))
      if optimizer.num_layers > 1:
        self.assertAllClose(actual[2][t], expected[1][t]["layer"], rtol=1e-4,
                            atol=1e-5, msg="layer of tensor %d" % t)
    if optimizer.num_layers == 3:
      self.assertAllClose(actual[3], expected[2][0], rtol=1e-4, atol=1e-5)
    # The step is not trivially zero (the comparison could not fail).
    self.assertGreater(np.max(np.abs(actual[0][0])), 1e-6)

  def test_pack_and_unpack_are_inverse(self):
    optimizer = _optimizer("every_feature")
    state = _random_state(optimizer, 11, np.random.RandomState(3))
    del state["layer"]
    packed = hrnn_packed.pack_state(
        optimizer, {key: tf.constant(value) for key, value in state.items()})
    self.assertEqual(packed.get_shape().as_list(),
                     [hrnn_packed.num_state_rows(optimizer), 11])
    back = self.evaluate(hrnn_packed.unpack_state(optimizer, packed))
    self.assertEqual(sorted(back), sorted(state))
    for key, value in state.items():
      self.assertAllEqual(back[key], value, msg=key)

  def test_chunks_cover_every_coordinate_once(self):
    sizes = [5, 1, 9, 3]
    total = sum(sizes)
    covered = []
    for start, stop in ((0, 7), (7, 8), (8, total)):
      chunk = hrnn_packed._Segments(sizes, start, stop)
      covered += [(t, start + a, start + b) for t, a, b in chunk.pieces]
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    for t in range(len(sizes)):
      mine = [(a, b) for owner, a, b in covered if owner == t]
      self.assertEqual(mine[0][0], bounds[t])
      self.assertEqual(mine[-1][1], bounds[t + 1])
      for (_, end), (begin, _) in zip(mine[:-1], mine[1:]):
        self.assertEqual(end, begin)


class PackedApplyTest(test_util.TestCase, parameterized.TestCase):
  """minimize() with packed slots against the per-tensor slots."""

  def _trajectory(self, steps=4, **kwargs):
    with tf.Graph().as_default():
      tf.set_random_seed(0)
      rng = np.random.RandomState(0)
      weights = tf.Variable(rng.randn(6, 3).astype(np.float32))
      bias = tf.Variable(rng.randn(3).astype(np.float32))
      table = tf.Variable(rng.randn(10, 3).astype(np.float32))
      inputs = tf.constant(rng.randn(8, 6).astype(np.float32))
      rows = tf.nn.embedding_lookup(table, [1, 4, 4, 7])
      loss = (tf.reduce_sum(tf.square(tf.matmul(inputs, weights) + bias)) +
              tf.reduce_sum(tf.sin(rows)))
      optimizer = hierarchical_rnn.HierarchicalRNN(
          [6, 7, 8], random_seed=5, use_problem_lr_mean=True,
          use_gradient_shortcut=True, use_grad_products=True, **kwargs)
      step = optimizer.minimize(loss)
      variables = [weights, bias, table]
      states = [optimizer.variable_state(v) for v in variables]
      with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        values = []
        for _ in range(steps):
          sess.run(step)
          values.append(sess.run(variables))
        final_states = sess.run(states)
    return values, final_states

  @parameterized.parameters(dict(xla_apply=False), dict(xla_apply=True))
  def test_steps_and_states_match_the_per_tensor_slots(self, **kwargs):
    reference, reference_states = self._trajectory(packed_apply=False)
    values, states = self._trajectory(**kwargs)
    for k, (expected, actual) in enumerate(zip(reference, values)):
      for e, a in zip(expected, actual):
        self.assertAllClose(a, e, rtol=1e-5, atol=1e-6, msg="step %d" % k)
    self.assertFalse(np.allclose(reference[0][0], reference[-1][0]))
    for expected, actual in zip(reference_states, states):
      for key, value in actual.items():
        self.assertAllClose(value, expected[key], rtol=1e-4, atol=1e-5,
                            msg=key)
    # Rows of the embedding that never had a gradient keep their mean
    # squares at the first update's value (zero gradient plus 1e-12).
    self.assertAllClose(states[2]["ms1"][0], [1e-12], rtol=1e-3)

  def test_attention_uses_the_per_tensor_slots(self):
    optimizer = hierarchical_rnn.HierarchicalRNN([4], use_attention=True)
    self.assertFalse(optimizer.packed_apply)


class PackedTrainTest(test_util.TestCase, parameterized.TestCase):
  """train() carrying packed states against the per-tensor loop."""

  def _unrolls(self, config, packed_train, mode_mt=False, extra=None,
               lr_bias=None, steps=5):
    """Outputs and meta-gradients of two consecutive unrolls."""
    with tf.Graph().as_default():
      problem = pg.FullyConnected(5, 3, hidden_sizes=(4,), random_seed=0)
      kwargs = dict(CONFIGS[config], **(extra or {}))
      optimizer = hierarchical_rnn.HierarchicalRNN(
          kwargs.pop("level_sizes", [6, 7, 8]), random_seed=1,
          zero_init_lr_weights=False, packed_train=packed_train, **kwargs)
      out = optimizer.train(problem)
      meta_vars = tf.trainable_variables()
      objective = out.imitation_loss if mode_mt else out.meta_objective
      grads = [g for g in tf.gradients(objective, meta_vars)
               if g is not None]
      copy = [tf.assign(var, value) for var, value in
              zip(out.carried_variables, out.carried_values)]
      rng = np.random.RandomState(0)
      x0 = [rng.randn(*shape).astype(np.float32)
            for shape in problem.param_shapes]
      feed = {out.objective_weights: np.ones(steps) / steps,
              out.mini_data: rng.randn(40, 5).astype(np.float32),
              out.mini_labels: rng.randint(0, 3, 40).astype(np.int32),
              out.batches: rng.randint(0, 40, (steps, 8)).astype(np.int32),
              out.imitating: mode_mt}
      feed.update(zip(out.initial_params, x0))
      for labels, shape in zip(out.teacher_steps, problem.param_shapes):
        feed[labels] = rng.randn(steps, *shape).astype(np.float32)
      results = []
      with tf.Session() as sess:
        sess.run([tf.global_variables_initializer(),
                  tf.local_variables_initializer()])
        if lr_bias is not None:
          optimizer.lr_bias.load([lr_bias], sess)
        for unroll in range(2):
          feed[out.first_unroll] = feed[out.reset_state] = unroll == 0
          results.append(sess.run(
              [objective, out.problem_objectives, grads,
               out.carried_values], feed))
          sess.run(copy, feed)
    return results, len(grads)

  def _check(self, config, mode_mt=False, extra=None, lr_bias=None):
    expected, count = self._unrolls(config, False, mode_mt, extra, lr_bias)
    actual, packed_count = self._unrolls(config, True, mode_mt, extra,
                                         lr_bias)
    self.assertEqual(packed_count, count)
    for unroll, (want, got) in enumerate(zip(expected, actual)):
      msg = "unroll %d" % unroll
      self.assertAllClose(got[0], want[0], rtol=1e-4, atol=1e-7, msg=msg)
      self.assertAllClose(got[1], want[1], rtol=1e-4, msg=msg)
      for g_want, g_got in zip(want[2], got[2]):
        self.assertAllClose(g_got, g_want, rtol=2e-3,
                            atol=2e-3 * np.max(np.abs(g_want)) + 1e-9,
                            msg=msg)
      for v_want, v_got in zip(want[3], got[3]):
        self.assertAllClose(v_got, v_want, rtol=1e-4, atol=1e-5, msg=msg)
    # The meta-gradient is not trivially zero (the comparison could fail).
    self.assertGreater(max(np.max(np.abs(g)) for g in expected[-1][2]), 1e-6)

  @parameterized.parameters("entry_points", "defaults", "one_level",
                            "every_feature", "fixed_output_scale")
  def test_unrolls_and_meta_gradients_match_the_per_tensor_loop(self,
                                                                config):
    self._check(config)

  def test_imitation_unrolls_match_the_per_tensor_loop(self):
    self._check("entry_points", mode_mt=True)

  def test_clipped_learning_rates_pass_gradients_straight_through(self):
    # Initial log learning rates lie in [-13.8, -4.6], clipped at -6; the
    # readout's bias of 1 takes many of them above the clip at every step.
    self._check("entry_points", extra=dict(max_log_lr=-6.), lr_bias=1.)

  def test_attention_trains_with_the_per_tensor_loop(self):
    optimizer = hierarchical_rnn.HierarchicalRNN([4], use_attention=True)
    self.assertFalse(optimizer.packed_train)

  def test_differentiable_asinh_has_the_exact_derivative(self):
    x = tf.constant([-30., -2., -1e-3, 0., 1e-3, 0.5, 4., 1e4])
    fast = hrnn_packed._asinh(x, differentiable=True)
    value, grad = self.evaluate([fast, tf.gradients(fast, x)[0]])
    self.assertAllClose(value, np.arcsinh(self.evaluate(x)), rtol=1e-6)
    self.assertAllClose(grad, 1. / np.sqrt(1. + self.evaluate(x) ** 2),
                        rtol=1e-6)
    # The plain formula's derivative at 0 is 0 (through sign and abs).
    plain = hrnn_packed._asinh(x)
    self.assertEqual(self.evaluate(tf.gradients(plain, x)[0])[3], 0.)


if __name__ == "__main__":
  tf.test.main()
