"""The smoke test every registered optimizer must pass, and partial unrolls.

For each optimizer of the registry, on a quadratic and on an MLP:
  * a meta-training unroll has a finite meta-objective whose meta-gradient
    reaches every meta-parameter (not None, finite, some entry non-zero);
  * an apply-mode minimize() step is an ordinary op that changes the
    variables.
"""

from tests import test_util

import os
import subprocess
import sys
import textwrap

from absl.testing import parameterized
import numpy as np
import tensorflow.compat.v1 as tf

from meta_training import unroll as unroll_lib
from optimizer import registry
from problems import problem_generator as pg

# Constructor arguments per registered optimizer (the level sizes and cell
# of the original's entry points, small where size does not matter).
_CONFIGS = {
    # With the default zero-initialised LR readout the LR momentum has an
    # exactly zero meta-gradient at initialisation (l_step = l), so the
    # readout starts random here.
    "HierarchicalRNN": dict(level_sizes=[10, 20, 20],
                            use_problem_lr_mean=True,
                            use_gradient_shortcut=True,
                            use_grad_products=True,
                            zero_init_lr_weights=False),
    "CoordinatewiseRNN": dict(cell_sizes=[5, 5], cell_cls="LSTMCell"),
    "GlobalLearningRate": dict(initial_rate=1e-2),
    "LearningRateSchedule": dict(initial_rate=1e-2, n_steps=5),
    "TrainableAdam": dict(learning_rate=1e-2),
}
_STEPS = 5


def _build(name):
  return registry.optimizer_class(name)(**_CONFIGS[name])


def _problems():
  rng = np.random.RandomState(0)
  data = rng.randn(30, 4).astype(np.float32)
  labels = rng.randint(0, 3, 30).astype(np.int32)
  return [
      ("quadratic", pg.Quadratic(6, random_seed=1), None),
      ("mlp", pg.FullyConnected(4, 3, hidden_sizes=(5,), random_seed=1),
       (data, labels)),
  ]


class RegistryTest(tf.test.TestCase):

  def test_registry_has_the_five_original_names(self):
    self.assertEqual(set(registry.NAMES),
                     {"HierarchicalRNN", "CoordinatewiseRNN",
                      "GlobalLearningRate", "LearningRateSchedule",
                      "TrainableAdam"})
    self.assertEqual(set(_CONFIGS), set(registry.NAMES))

  def test_unknown_names_are_rejected(self):
    with self.assertRaisesRegex(ValueError, "unknown optimizer"):
      registry.optimizer_class("SGD")


class SmokeTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(*registry.NAMES)
  def test_meta_gradient_reaches_every_meta_parameter(self, name):
    for problem_name, problem, data in _problems():
      with tf.Graph().as_default():
        optimizer = _build(name)
        meta_vars = tf.trainable_variables()
        self.assertNotEmpty(meta_vars)
        out = unroll_lib.build_unroll(optimizer, problem)
        grads = tf.gradients(out.meta_objective, meta_vars)
        missing = [v.op.name for v, g in zip(meta_vars, grads) if g is None]
        self.assertEmpty(missing, "%s on %s" % (name, problem_name))
        grads = [tf.convert_to_tensor(g) for g in grads]
        rng = np.random.RandomState(0)
        feed = {out.objective_weights: np.ones(_STEPS) / _STEPS,
                out.first_unroll: True, out.reset_state: True}
        feed.update(zip(out.initial_params,
                        test_util.feed_values(problem, rng, 0.5)))
        if data is not None:
          feed[out.mini_data], feed[out.mini_labels] = data
          feed[out.batches] = rng.randint(0, 30, (_STEPS, 8)).astype(np.int32)
        with tf.Session() as sess:
          sess.run([tf.global_variables_initializer(),
                    tf.local_variables_initializer()])
          metaobj, grad_values = sess.run([out.meta_objective, grads], feed)
      where = "%s on %s" % (name, problem_name)
      self.assertTrue(np.isfinite(metaobj), where)
      for var, value in zip(meta_vars, grad_values):
        self.assertTrue(np.all(np.isfinite(value)), var.op.name)
        self.assertTrue(np.any(value != 0), "%s: zero meta-gradient of %s" %
                        (where, var.op.name))

  @parameterized.parameters(*registry.NAMES)
  def test_apply_step_is_an_op_that_moves_the_variables(self, name):
    optimizer = _build(name)
    x = tf.Variable(np.linspace(-1, 1, 6).astype(np.float32))
    step = optimizer.minimize(tf.reduce_sum(tf.square(x - 0.3)))
    self.assertIsInstance(step, tf.Operation)
    with self.cached_session() as sess:
      sess.run(tf.global_variables_initializer())
      before = sess.run(x)
      sess.run(tf.group(step))
      after = sess.run(x)
    self.assertTrue(np.all(np.isfinite(after)))
    self.assertNotAllClose(before, after)


class PartialUnrollTest(tf.test.TestCase, parameterized.TestCase):
  """Two unrolls of 10 steps with state propagation equal one of 20."""

  @parameterized.named_parameters(
      ("hierarchical_rnn", "HierarchicalRNN",
       dict(level_sizes=[6, 7, 8], init_lr_range=(1e-2, 1e-2),
            zero_init_lr_weights=False)),
      ("coordinatewise_rnn", "CoordinatewiseRNN",
       dict(cell_sizes=[5], cell_cls="LSTMCell", init_lr_range=(0.1, 0.1))))
  def test_two_unrolls_equal_one_long_unroll(self, name, kwargs):
    optimizer = registry.optimizer_class(name)(**kwargs)
    problem = pg.FullyConnected(4, 3, hidden_sizes=(5,), random_seed=2)
    out = unroll_lib.build_unroll(optimizer, problem)
    copy = [tf.assign(var, value) for var, value in
            zip(out.carried_variables, out.carried_values)]
    num_params = len(problem.param_shapes)
    final_params = out.carried_values[1:1 + num_params]
    rng = np.random.RandomState(3)
    data = rng.randn(40, 4).astype(np.float32)
    labels = rng.randint(0, 3, 40).astype(np.int32)
    batches = rng.randint(0, 40, (20, 10)).astype(np.int32)
    init = test_util.feed_values(problem, rng, 0.5)

    def feed(steps, first, batch_rows):
      values = {out.objective_weights: np.ones(steps) / steps,
                out.first_unroll: first, out.reset_state: first,
                out.mini_data: data, out.mini_labels: labels,
                out.batches: batches[batch_rows]}
      values.update(zip(out.initial_params, init))
      return values

    with self.cached_session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      whole, whole_params = sess.run(
          [out.problem_objectives, final_params],
          feed(20, True, slice(0, 20)))
      first, _ = sess.run([out.problem_objectives, copy],
                          feed(10, True, slice(0, 10)))
      second, split_params = sess.run(
          [out.problem_objectives, final_params],
          feed(10, False, slice(10, 20)))
    self.assertLen(whole, 21)
    self.assertAllClose(np.concatenate([first, second[1:]]), whole,
                        rtol=1e-5, atol=1e-6)
    for a, b in zip(split_params, whole_params):
      self.assertAllClose(a, b, rtol=1e-5, atol=1e-6)


_USER_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow.compat.v1 as tf
    if sys.argv[1] == "v1":
      tf.disable_v2_behavior()
    from optimizer import hierarchical_rnn

    with tf.Graph().as_default():
      tf.set_random_seed(0)
      x = tf.placeholder(tf.float32, [None, 3])
      y = tf.placeholder(tf.float32, [None, 1])
      w = tf.get_variable("w", [3, 1])
      b = tf.get_variable("b", [1], initializer=tf.zeros_initializer())
      loss = tf.reduce_mean(tf.square(tf.matmul(x, w) + b - y))
      train_op = hierarchical_rnn.HierarchicalRNN(
          [10, 20, 20], init_lr_range=(1e-2, 1e-2),
          random_seed=1).minimize(loss)
      rng = np.random.RandomState(0)
      inputs = rng.randn(64, 3)
      feed = {x: inputs, y: inputs.dot([[1.], [2.], [3.]])}
      with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        start = sess.run(loss, feed)
        for _ in range(50):
          sess.run(train_op, feed)
        print(start, sess.run(loss, feed))
""")


class UserScriptTest(tf.test.TestCase, parameterized.TestCase):
  """A user's own tf.compat.v1 script trains with HierarchicalRNN."""

  @parameterized.parameters("v1", "v2")
  def test_user_script_trains_without_flags(self, behaviour):
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    result = subprocess.run(
        [sys.executable, "-c", _USER_SCRIPT, behaviour], cwd=root,
        capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=root))
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    start, end = map(float, result.stdout.split())
    self.assertLess(end, start)


if __name__ == "__main__":
  tf.test.main()
