"""Tests of the packed apply-mode step against the per-tensor HierarchicalRNN.

The per-tensor path (`HierarchicalRNN._compute_updates`, the one meta-training
uses and tests/optimizer/hierarchical_rnn_test.py checks against numpy) is
the reference: the packed step, plain or compiled with XLA, cut into any
number of chunks, must give the same steps and states to float32 rounding.
"""

from tests import test_util

from absl.testing import parameterized
import numpy as np
import tensorflow.compat.v1 as tf

from optimizer import hierarchical_rnn
from optimizer import hrnn_packed

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


if __name__ == "__main__":
  tf.test.main()
