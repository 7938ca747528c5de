"""The HierarchicalRNN step against an independent numpy reference.

tests/optimizer/hrnn_numpy.py writes the step per tensor in float64 from the
original's equations. Apply mode (plain, compiled with XLA, cut into chunks)
and meta-training unrolls (trajectories, objectives, imitation) must agree
with it to float32 tolerance; the meta-gradient is checked against finite
differences.
"""

from unittest import mock

from tests import test_util
from tests.optimizer import hrnn_numpy

from absl.testing import parameterized
import numpy as np
import tensorflow.compat.v1 as tf

from meta_training import unroll as unroll_lib
from optimizer import hierarchical_rnn
from optimizer import hrnn_step
from optimizer import utils
from problems import problem_generator as pg

SHAPES = [(7, 5), (5,), (3, 2, 2)]

CONFIGS = {
    "entry_points": dict(use_problem_lr_mean=True, use_gradient_shortcut=True,
                         use_grad_products=True),
    "defaults": {},
    "attention": dict(use_attention=True, use_gradient_shortcut=True,
                      use_grad_products=True),
    "attention_fixed_output_scale": dict(
        use_attention=True, dynamic_output_scale=False,
        use_relative_lr=False),
    "one_level": dict(level_sizes=[6]),
    "two_levels": dict(level_sizes=[6, 7], use_problem_lr_mean=True),
    "every_feature": dict(use_extreme_indicator=True, use_lr_shortcut=True,
                          use_multiple_scale_decays=True,
                          use_gradient_shortcut=True, use_grad_products=True,
                          global_rnn_sees_all_tensors=True),
    "fixed_output_scale": dict(dynamic_output_scale=False,
                               use_relative_lr=False),
    "one_scale": dict(num_gradient_scales=1, use_gradient_shortcut=True),
    "constant_decays": dict(learnable_decay=False),
    "no_log_means_squared": dict(use_log_means_squared=False),
}


def _optimizer(config, **extra):
  kwargs = dict(dict(random_seed=1, zero_init_lr_weights=False,
                     init_lr_range=(1e-2, 1e-2)), **CONFIGS[config], **extra)
  level_sizes = kwargs.pop("level_sizes", [6, 7, 8])
  return hierarchical_rnn.HierarchicalRNN(level_sizes, **kwargs)


class _SineBowl(pg.Problem):
  """f = 3 + sum_t 0.5 |p_t - c_t|^2 + 0.1 sum sin(p_t), positive."""

  def __init__(self, shapes=SHAPES):
    super().__init__(shapes, random_seed=0, noise_stdev=0.)
    self.centres = [self.rng.randn(*shape) for shape in shapes]

  def objective(self, parameters, data=None, labels=None):
    return 3. + tf.add_n([
        0.5 * tf.reduce_sum(tf.square(p - c.astype(np.float32))) +
        0.1 * tf.reduce_sum(tf.sin(p))
        for p, c in zip(parameters, self.centres)])

  def numpy_objective(self, parameters):
    return 3. + sum(0.5 * np.sum((p - c) ** 2) + 0.1 * np.sum(np.sin(p))
                    for p, c in zip(parameters, self.centres))

  def numpy_gradients(self, parameters):
    return [p - c + 0.1 * np.cos(p) for p, c in zip(parameters,
                                                    self.centres)]


def _close(test, actual, expected, msg, rtol=2e-4):
  """Compares on the scale of the largest entry (steps cancel)."""
  expected = np.asarray(expected)
  test.assertAllClose(actual, expected, rtol=rtol,
                      atol=rtol * (np.max(np.abs(expected)) + 1e-3), msg=msg)


class ApplyModeTest(test_util.TestCase, parameterized.TestCase):
  """minimize() against numpy over a few steps."""

  def _check(self, config, xla_apply, chunks=None, steps=3):
    problem = _SineBowl()
    rng = np.random.RandomState(1)
    x0 = [rng.randn(*shape) for shape in SHAPES]
    optimizer = _optimizer(config, xla_apply=xla_apply)
    variables = [tf.Variable(x.astype(np.float32)) for x in x0]
    if chunks is None:
      train_op = optimizer.minimize(problem.objective(variables))
    else:
      with mock.patch.object(hrnn_step, "num_chunks",
                             lambda total, xla: chunks):
        train_op = optimizer.minimize(problem.objective(variables))
    true_params = optimizer.true_parameters(variables)
    states = [optimizer.variable_state(var) for var in variables]
    with self.cached_session() as sess:
      sess.run(tf.global_variables_initializer())
      v = hrnn_numpy.meta_values(sess)
      np_states = [hrnn_numpy.initial_state(optimizer, v, x) for x in x0]
      np_global = hrnn_numpy.initial_global(optimizer, v)
      at = x0
      for k in range(steps):
        np_states, np_global, attended = hrnn_numpy.step(
            optimizer, v, problem.numpy_gradients(at), np_states, np_global)
        true = [state["true_param"] for state in np_states]
        at = true if attended is None else attended
        sess.run(train_op)
        got_at, got_true = sess.run([variables, true_params])
        for t in range(len(SHAPES)):
          msg = "step %d tensor %d" % (k, t)
          _close(self, got_at[t], at[t], msg)
          _close(self, got_true[t], true[t], msg)
      got_states = sess.run(states)
    for t, (got, want) in enumerate(zip(got_states, np_states)):
      for key in got:
        _close(self, got[key], np.reshape(want[key], got[key].shape),
               "%s of tensor %d" % (key, t))
    # The parameters moved (the comparison could fail).
    self.assertGreater(np.max(np.abs(true[0] - x0[0])), 1e-4)
    if optimizer.use_attention and optimizer.dynamic_output_scale:
      # (Without it the attended location starts equal to the parameters:
      # attention_weights start as update_weights.)
      self.assertGreater(np.max(np.abs(at[0] - true[0])), 1e-4)

  @parameterized.parameters(*sorted(CONFIGS))
  def test_steps_match_numpy(self, config):
    self._check(config, xla_apply=False)

  @parameterized.parameters("entry_points", "attention", "fixed_output_scale")
  def test_steps_compiled_with_xla_match_numpy(self, config):
    self._check(config, xla_apply=True)

  @parameterized.parameters("entry_points", "attention", "every_feature")
  def test_steps_in_three_chunks_match_numpy(self, config):
    self._check(config, xla_apply=True, chunks=3)


class TrainTest(test_util.TestCase, parameterized.TestCase):
  """train() unrolls against numpy."""

  def _numpy_unrolls(self, optimizer, v, problem, x0, weights, teacher,
                     imitating):
    states = [hrnn_numpy.initial_state(optimizer, v, x) for x in x0]
    global_h = hrnn_numpy.initial_global(optimizer, v)
    params, at = x0, x0
    initial = problem.numpy_objective(x0)
    results = []
    for unroll_weights, unroll_teacher in zip(weights, teacher):
      objectives = [problem.numpy_objective(params)]
      mse_sum = 0.
      for w, target in zip(unroll_weights, unroll_teacher):
        objectives.append(problem.numpy_objective(params))
        states, global_h, attended = hrnn_numpy.step(
            optimizer, v, problem.numpy_gradients(at), states, global_h)
        own = [p - state["true_param"] for p, state in zip(params, states)]
        if imitating:
          params = [p - s for p, s in zip(params, target)]
        else:
          params = [state["true_param"] for state in states]
        for state, p in zip(states, params):
          state["true_param"] = p
        mse_sum += w * sum(0.5 * np.sum((o - s) ** 2)
                           for o, s in zip(own, target)) / problem.num_params
        at = params if attended is None else attended
      objectives = np.array(objectives)
      meta = np.mean(np.log(objectives / (initial + 1e-6) + 1e-6))
      results.append((meta, mse_sum, objectives, list(params),
                      [dict(s) for s in states]))
    return results

  def _check(self, config, imitating=False, steps=3):
    problem = _SineBowl()
    optimizer = _optimizer(config)
    out = unroll_lib.build_unroll(optimizer, problem)
    copy = [tf.assign(var, value) for var, value in
            zip(out.carried_variables, out.carried_values)]
    rng = np.random.RandomState(2)
    x0 = [rng.randn(*shape) for shape in SHAPES]
    weights = [np.ones(steps) / steps, np.arange(1., steps + 1)]
    teacher = [[[0.05 * rng.randn(*shape) for shape in SHAPES]
                for _ in range(steps)] for _ in range(2)]
    keys = out.state_keys[0]
    with self.cached_session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      v = hrnn_numpy.meta_values(sess)
      expected = self._numpy_unrolls(optimizer, v, problem, x0, weights,
                                     teacher, imitating)
      for unroll in range(2):
        feed = {out.objective_weights: weights[unroll],
                out.first_unroll: unroll == 0,
                out.reset_state: unroll == 0, out.imitating: imitating}
        feed.update(zip(out.initial_params, x0))
        for t, labels in enumerate(out.teacher_steps):
          feed[labels] = np.stack([s[t] for s in teacher[unroll]])
        got = sess.run([out.meta_objective, out.imitation_loss,
                        out.problem_objectives, out.carried_values[1:4],
                        out.output_state], feed)
        sess.run(copy, feed)
        meta, mse, objectives, params, states = expected[unroll]
        msg = "unroll %d" % unroll
        self.assertAllClose(got[0], meta, rtol=1e-4, atol=1e-5, msg=msg)
        self.assertAllClose(got[1], mse, rtol=1e-3, msg=msg)
        self.assertAllClose(got[2], objectives, rtol=1e-5, msg=msg)
        for t in range(len(SHAPES)):
          _close(self, got[3][t], params[t], msg)
          for key, value in zip(keys, got[4][t]):
            _close(self, value, np.reshape(states[t][key], value.shape),
                   "%s %s of tensor %d" % (msg, key, t))
    self.assertGreater(abs(expected[1][0] - expected[0][0]), 1e-4)

  @parameterized.parameters("entry_points", "attention", "one_level",
                            "every_feature", "fixed_output_scale")
  def test_unrolls_match_numpy(self, config):
    self._check(config)

  @parameterized.parameters("entry_points", "attention")
  def test_imitation_unrolls_match_numpy(self, config):
    self._check(config, imitating=True)


class MetaGradientTest(test_util.TestCase):

  def _unroll(self, extra=None, steps=4):
    problem = _SineBowl()
    optimizer = _optimizer("entry_points", **(extra or {}))
    out = unroll_lib.build_unroll(optimizer, problem)
    rng = np.random.RandomState(3)
    feed = {out.objective_weights: np.ones(steps) / steps,
            out.first_unroll: True, out.reset_state: True}
    feed.update(zip(out.initial_params,
                    [rng.randn(*s).astype(np.float32) for s in SHAPES]))
    return optimizer, out, feed

  def test_meta_gradient_matches_a_finite_difference(self):
    # Large steps, so that the meta-objective moves well above its float32
    # rounding.
    _, out, feed = self._unroll(extra=dict(init_lr_range=(0.3, 0.3)))
    meta_vars = [v for v in tf.trainable_variables()
                 if v.op.name.startswith("LOL/")]
    grads = tf.gradients(out.meta_objective, meta_vars)
    pairs = [(g, v) for g, v in zip(grads, meta_vars) if g is not None]
    rng = np.random.RandomState(4)
    with self.cached_session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      grad_values = sess.run([g for g, _ in pairs], feed)
      start = sess.run([v for _, v in pairs])
      norm = np.sqrt(sum(np.sum(g ** 2) for g in grad_values))
      direction = [rng.randn(*g.shape) / np.sqrt(g.size) + g / norm
                   for g in grad_values]
      length = np.sqrt(sum(np.sum(d ** 2) for d in direction))
      direction = [d / length for d in direction]
      analytic = sum(np.sum(g * d) for g, d in zip(grad_values, direction))
      epsilon = 1e-2
      values = []
      for sign in (1., -1.):
        for (_, var), x, d in zip(pairs, start, direction):
          var.load(x + sign * epsilon * d, sess)
        values.append(sess.run(out.meta_objective, feed))
    numeric = (values[0] - values[1]) / (2. * epsilon)
    self.assertGreater(abs(analytic), 1e-3)
    self.assertAllClose(numeric, analytic, rtol=1e-2)

  def test_clipped_learning_rates_pass_gradients_straight_through(self):
    # log lr starts at log(1e-2) = -4.6; the readout bias of 1 takes every
    # coordinate above the clip at -6 at every step, where the true
    # derivative of the step in the readout bias is zero.
    optimizer, out, feed = self._unroll(extra=dict(max_log_lr=-6.))
    [grad] = tf.gradients(out.meta_objective, [optimizer.lr_bias])
    with self.cached_session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      optimizer.lr_bias.load([1.], sess)
      self.assertGreater(np.abs(sess.run(grad, feed)).max(), 1e-6)


class LayoutTest(test_util.TestCase):

  def test_pack_and_unpack_are_inverse(self):
    optimizer = _optimizer("every_feature")
    rng = np.random.RandomState(3)
    state = {key: rng.randn(11, value.get_shape().as_list()[1])
             .astype(np.float32)
             for key, value in optimizer._initialize_state(
                 tf.zeros([11])).items()
             if key not in ("layer", "true_param")}
    packed = hrnn_step.pack_state(
        optimizer, {key: tf.constant(value) for key, value in state.items()})
    self.assertEqual(packed.get_shape().as_list(),
                     [hrnn_step.num_state_rows(optimizer), 11])
    back = self.evaluate(hrnn_step.unpack_state(optimizer, packed))
    self.assertEqual(sorted(back), sorted(state))
    for key, value in state.items():
      self.assertAllEqual(back[key], value, msg=key)

  def test_chunks_cover_every_coordinate_once(self):
    sizes = [5, 1, 9, 3]
    total = sum(sizes)
    covered = []
    for start, stop in ((0, 7), (7, 8), (8, total)):
      chunk = hrnn_step._Segments(sizes, start, stop)
      covered += [(t, start + a, start + b) for t, a, b in chunk.pieces]
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    for t in range(len(sizes)):
      mine = [(a, b) for owner, a, b in covered if owner == t]
      self.assertEqual(mine[0][0], bounds[t])
      self.assertEqual(mine[-1][1], bounds[t + 1])
      for (_, end), (begin, _) in zip(mine[:-1], mine[1:]):
        self.assertEqual(end, begin)


class AsinhTest(test_util.TestCase):

  def test_differentiable_asinh_has_the_exact_derivative(self):
    x = tf.constant([-30., -2., -1e-3, 0., 1e-3, 0.5, 4., 1e4])
    fast = utils.asinh(x, differentiable=True)
    value, grad = self.evaluate([fast, tf.gradients(fast, x)[0]])
    self.assertAllClose(value, np.arcsinh(self.evaluate(x)), rtol=1e-6)
    self.assertAllClose(grad, 1. / np.sqrt(1. + self.evaluate(x) ** 2),
                        rtol=1e-6)
    self.assertEqual(grad[3], 1.)
    # The plain formula's derivative at 0 is 0 (through sign and abs).
    plain = utils.asinh(x, differentiable=False)
    self.assertEqual(self.evaluate(tf.gradients(plain, x)[0])[3], 0.)


if __name__ == "__main__":
  tf.test.main()
