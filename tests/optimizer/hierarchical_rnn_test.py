"""Tests of HierarchicalRNN: variables, equations, features, apply mode."""

from tests import test_util
from tests.optimizer import hrnn_numpy

from absl.testing import parameterized
import numpy as np
import tensorflow.compat.v1 as tf

from meta_training import unroll as unroll_lib
from optimizer import hierarchical_rnn
from problems import problem_generator as pg

# The entry points' configuration (metarun.py flag defaults).
ENTRY_POINT_KWARGS = dict(use_problem_lr_mean=True, use_gradient_shortcut=True,
                          use_grad_products=True)

# Variables of the published checkpoint without the RMSProp slots and
# global_step (docs/reference/checkpoint_variables.md).
_CHECKPOINT_VARIABLES = {
    "LOL/Layer2_RNN/BiasGRUCell/candidate/Affine/Bias": [20],
    "LOL/Layer2_RNN/BiasGRUCell/candidate/Affine/Matrix": [40, 20],
    "LOL/Layer2_RNN/BiasGRUCell/gates/Affine/Bias": [40],
    "LOL/Layer2_RNN/BiasGRUCell/gates/Affine/Matrix": [40, 40],
    "LOL/Level0_RNN/init_vector": [1, 10],
    "LOL/Level1_RNN/init_vector": [1, 20],
    "LOL/Level2_RNN/init_vector": [1, 20],
    "LOL/PerTensor/GradsToDelta/Matrix": [4, 1],
    "LOL/PerTensor/Layer0_RNN/BiasGRUCell/candidate/Affine/Bias": [10],
    "LOL/PerTensor/Layer0_RNN/BiasGRUCell/candidate/Affine/Matrix": [22, 10],
    "LOL/PerTensor/Layer0_RNN/BiasGRUCell/gates/Affine/Bias": [20],
    "LOL/PerTensor/Layer0_RNN/BiasGRUCell/gates/Affine/Matrix": [22, 20],
    "LOL/PerTensor/Layer0_RNN/Global/Affine/Bias": [30],
    "LOL/PerTensor/Layer0_RNN/Global/Affine/Matrix": [20, 30],
    "LOL/PerTensor/Layer0_RNN/Param/Affine/Bias": [30],
    "LOL/PerTensor/Layer0_RNN/Param/Affine/Matrix": [20, 30],
    "LOL/PerTensor/Layer1_RNN/Affine/Bias": [60],
    "LOL/PerTensor/Layer1_RNN/Affine/Matrix": [20, 60],
    "LOL/PerTensor/Layer1_RNN/BiasGRUCell/candidate/Affine/Bias": [20],
    "LOL/PerTensor/Layer1_RNN/BiasGRUCell/candidate/Affine/Matrix": [42, 20],
    "LOL/PerTensor/Layer1_RNN/BiasGRUCell/gates/Affine/Bias": [40],
    "LOL/PerTensor/Layer1_RNN/BiasGRUCell/gates/Affine/Matrix": [42, 40],
    "LOL/PerTensor/learning_rate_momentum_logit": [],
    "LOL/PerTensor/param_stepsize_offset": [],
    "LOL/inp_decay_bias": [1],
    "LOL/inp_decay_weights": [10, 1],
    "LOL/learning_rate_bias": [1],
    "LOL/learning_rate_weights": [10, 1],
    "LOL/scl_decay_bias": [1],
    "LOL/scl_decay_weights": [10, 1],
    "LOL/update_weights": [10, 1],
}


class ConstructionTest(tf.test.TestCase):

  def test_entry_point_configuration_has_the_checkpoints_variables(self):
    hierarchical_rnn.HierarchicalRNN([10, 20, 20], **ENTRY_POINT_KWARGS)
    have = {v.op.name: v.get_shape().as_list() for v in tf.global_variables()}
    self.assertEqual(have, _CHECKPOINT_VARIABLES)
    self.assertEqual(sum(int(np.prod(s)) for s in have.values()), 8349)
    self.assertEqual(len(tf.trainable_variables()), len(have))

  def test_checkpoint_variables_match_the_published_file(self):
    path = test_util.published_checkpoint()
    if path is None:
      self.skipTest("published checkpoint not found")
    stored = {name: shape for name, shape in tf.train.list_variables(path)
              if "RMSProp" not in name and name != "global_step"}
    self.assertEqual(stored, _CHECKPOINT_VARIABLES)

  def test_constructor_defaults_are_the_originals(self):
    optimizer = hierarchical_rnn.HierarchicalRNN([10, 20, 20])
    self.assertFalse(optimizer.use_problem_lr_mean)
    self.assertFalse(optimizer.use_gradient_shortcut)
    self.assertFalse(optimizer.use_grad_products)
    self.assertTrue(optimizer.use_log_objective)
    self.assertEqual(optimizer.init_lr_range, (1e-6, 1e-2))
    self.assertEqual(optimizer.num_features, 4 + 4 + 1)
    names = {v.op.name for v in tf.global_variables()}
    self.assertNotIn("LOL/PerTensor/GradsToDelta/Matrix", names)

  def test_bad_arguments_are_rejected(self):
    bad = [dict(level_sizes=[]), dict(level_sizes=[1, 2, 3, 4]),
           dict(level_sizes=[np.int64(3)]),
           dict(level_sizes=[3], init_lr_range=(1.,)),
           dict(level_sizes=[3], init_lr_range=(1., 0.1)),
           dict(level_sizes=[3], dynamic_output_scale=False)]
    for kwargs in bad:
      with tf.Graph().as_default():
        with self.assertRaises(ValueError, msg=str(kwargs)):
          hierarchical_rnn.HierarchicalRNN(**kwargs)

  def test_initial_values_follow_the_original_inits(self):
    optimizer = hierarchical_rnn.HierarchicalRNN([10, 20, 20],
                                                 **ENTRY_POINT_KWARGS)
    self.evaluate(tf.global_variables_initializer())
    graph = tf.get_default_graph()
    get = lambda n: self.evaluate(graph.get_tensor_by_name("LOL/%s:0" % n))
    self.assertAllClose(get("scl_decay_bias"), [3.2])
    self.assertAllClose(get("inp_decay_bias"), [2.2])
    self.assertAllEqual(get("learning_rate_weights"), np.zeros((10, 1)))
    self.assertAllClose(get("PerTensor/param_stepsize_offset"), -1.0)
    self.assertAllClose(get("PerTensor/learning_rate_momentum_logit"), 3.2)
    self.assertAllClose(
        get("PerTensor/Layer1_RNN/BiasGRUCell/gates/Affine/Bias"),
        2.2 * np.ones(40))
    self.assertAllClose(np.mean(get("PerTensor/GradsToDelta/Matrix")), 0.25,
                        atol=0.1)
    vector = self.evaluate(optimizer.init_vectors[0])
    self.assertTrue(np.all(np.abs(vector) <= 1.0))


class EquationsTest(tf.test.TestCase):

  def test_two_steps_match_a_numpy_reference(self):
    self._check_two_steps_against_numpy()

  def test_two_steps_without_xla_match_a_numpy_reference(self):
    self._check_two_steps_against_numpy(xla_apply=False)

  def _check_two_steps_against_numpy(self, **kwargs):
    optimizer = hierarchical_rnn.HierarchicalRNN(
        [6], num_gradient_scales=2, init_lr_range=(1e-2, 1e-2),
        zero_init_lr_weights=False, **ENTRY_POINT_KWARGS, **kwargs)
    rng = np.random.RandomState(0)
    target = rng.randn(5, 1).astype(np.float32)
    theta = tf.Variable(rng.randn(5, 1).astype(np.float32))
    loss = 0.5 * tf.reduce_sum(tf.square(theta - target)) + tf.reduce_sum(
        tf.sin(theta))
    step = optimizer.minimize(loss, var_list=[theta])
    with self.cached_session() as sess:
      sess.run(tf.global_variables_initializer())
      v = hrnn_numpy.meta_values(sess)
      x = sess.run(theta).astype(np.float64)
      [state] = [hrnn_numpy.initial_state(optimizer, v, x)]
      for _ in range(2):
        g = (x - target) + np.cos(x)
        [state], _, _ = hrnn_numpy.step(optimizer, v, [g], [state], None)
        x = state["true_param"]
        sess.run(step)
        self.assertAllClose(sess.run(theta), x, rtol=1e-4, atol=1e-5)
      slots = optimizer.variable_state(theta)
      for key in ("log_learning_rate", "scl_decay", "ms2", "parameter"):
        self.assertAllClose(sess.run(slots[key]), state[key], rtol=1e-4,
                            atol=1e-5, msg=key)

  def test_first_step_size_is_the_initial_learning_rate_over_e(self):
    optimizer = hierarchical_rnn.HierarchicalRNN([10, 20, 20],
                                                 init_lr_range=(1e-3, 1e-3),
                                                 **ENTRY_POINT_KWARGS)
    theta = tf.Variable(np.linspace(-1, 1, 50).astype(np.float32))
    step = optimizer.minimize(tf.reduce_sum(theta**4), var_list=[theta])
    with self.cached_session() as sess:
      sess.run(tf.global_variables_initializer())
      before = sess.run(theta)
      sess.run(step)
      change = sess.run(theta) - before
    # Zero-initialised LR readout: step = exp(log 1e-3 - 1) * unit-RMS dir.
    self.assertAllClose(np.sqrt(np.mean(change**2)), 1e-3 / np.e, rtol=1e-4)

  def test_global_rnn_input_option_matters_only_for_several_tensors(self):
    results = {}
    for sees_all in (False, True):
      for num_tensors in (1, 3):
        with tf.Graph().as_default():
          tf.set_random_seed(1)
          optimizer = hierarchical_rnn.HierarchicalRNN(
              [4, 5, 6], random_seed=2, init_lr_range=(1e-2, 1e-2),
              global_rnn_sees_all_tensors=sees_all)
          rng = np.random.RandomState(0)
          thetas = [tf.Variable(rng.randn(3).astype(np.float32))
                    for _ in range(num_tensors)]
          loss = tf.add_n([tf.reduce_sum(tf.square(t)) for t in thetas])
          step = optimizer.minimize(loss)
          global_state = [v for v in tf.global_variables()
                          if v.op.name == "hRNN/global_state"][0]
          with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for _ in range(2):
              sess.run(step)
            results[sees_all, num_tensors] = sess.run(global_state)
    self.assertAllClose(results[False, 1], results[True, 1])
    self.assertNotAllClose(results[False, 3], results[True, 3])


_TOGGLES = [
    ("defaults", {}),
    ("entry_point", ENTRY_POINT_KWARGS),
    ("fixed_decay", dict(learnable_decay=False)),
    ("fixed_output_scale", dict(dynamic_output_scale=False,
                                use_relative_lr=False)),
    ("attention", dict(use_attention=True)),
    ("attention_shortcut", dict(use_attention=True,
                                use_gradient_shortcut=True)),
    ("one_gradient_scale", dict(num_gradient_scales=1)),
    ("two_gradient_scales", dict(num_gradient_scales=2)),
    ("no_relative_lr", dict(use_relative_lr=False)),
    ("extreme_indicator", dict(use_extreme_indicator=True)),
    ("no_log_means_squared", dict(use_log_means_squared=False)),
    ("problem_lr_mean", dict(use_problem_lr_mean=True)),
    ("gradient_shortcut", dict(use_gradient_shortcut=True)),
    ("lr_shortcut", dict(use_lr_shortcut=True)),
    ("grad_products", dict(use_grad_products=True)),
    ("multiple_scale_decays", dict(use_multiple_scale_decays=True)),
    ("fixed_inp_decay", dict(learnable_inp_decay=False)),
    ("random_rnn_init", dict(learnable_rnn_init=False)),
    ("small_max_log_lr", dict(max_log_lr=-5)),
    ("lr_weights_not_zero", dict(zero_init_lr_weights=False)),
    ("one_level", dict(level_sizes=[5])),
    ("two_levels", dict(level_sizes=[5, 7])),
    ("global_sees_all", dict(global_rnn_sees_all_tensors=True)),
    ("no_second_derivatives", dict(use_second_derivatives=False)),
    ("linear_objective", dict(use_log_objective=False)),
    ("seeded", dict(random_seed=5)),
]


class FeatureToggleTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(*_TOGGLES)
  def test_toggle_trains_and_applies(self, kwargs):
    kwargs = dict(kwargs)
    level_sizes = kwargs.pop("level_sizes", [5, 7, 9])
    optimizer = hierarchical_rnn.HierarchicalRNN(level_sizes, **kwargs)
    problem = pg.Quadratic(3, random_seed=0)
    out = unroll_lib.build_unroll(optimizer, problem)
    meta_vars = tf.trainable_variables()
    meta_grads = tf.gradients(out.meta_objective, meta_vars)
    theta = tf.Variable(np.ones([4, 2], np.float32))
    bias = tf.Variable(np.zeros([2], np.float32))
    step = optimizer.minimize(tf.reduce_sum(tf.square(
        tf.matmul(tf.ones([1, 4]), theta) + bias - 1.0)),
        var_list=[theta, bias])
    rng = np.random.RandomState(0)
    with self.cached_session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      feed = {out.objective_weights: np.ones(4) / 4, out.first_unroll: True,
              out.reset_state: True}
      feed.update(zip(out.initial_params, test_util.feed_values(problem, rng)))
      metaobj, grads = sess.run(
          [out.meta_objective, [g for g in meta_grads if g is not None]], feed)
      before = sess.run(theta)
      sess.run(step)
      after = sess.run(theta)
    self.assertTrue(np.isfinite(metaobj))
    self.assertTrue(all(np.all(np.isfinite(g)) for g in grads))
    self.assertNotAllClose(before, after)
    self.assertTrue(np.all(np.isfinite(after)))


class ApplyModeTest(tf.test.TestCase):

  def test_untrained_optimizer_lowers_a_quadratic_over_100_steps(self):
    problem = pg.Quadratic(10, random_seed=0)
    optimizer = hierarchical_rnn.HierarchicalRNN([10, 20, 20],
                                                 **ENTRY_POINT_KWARGS)
    x = tf.Variable(np.random.RandomState(0).randn(10, 1).astype(np.float32))
    loss = problem.objective([x])
    step = optimizer.minimize(loss)
    with self.cached_session() as sess:
      sess.run(tf.global_variables_initializer())
      start = sess.run(loss)
      for _ in range(100):
        sess.run(step)
      end = sess.run(loss)
    self.assertLess(end, start)

  def test_apply_returns_one_op_and_counts_global_steps(self):
    optimizer = hierarchical_rnn.HierarchicalRNN([4, 5, 6])
    x = tf.Variable([1.0, 2.0])
    unused = tf.Variable([3.0])
    global_step = tf.train.get_or_create_global_step()
    step = optimizer.minimize(tf.reduce_sum(tf.square(x)),
                              global_step=global_step, var_list=[x, unused])
    self.assertIsInstance(step, tf.Operation)
    grads_and_vars = [(tf.ones([2]), x), (None, unused)]
    second = optimizer.apply_gradients(grads_and_vars)
    with tf.control_dependencies([step]):
      chained = tf.no_op()
    with self.cached_session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(chained)
      sess.run(second)
      self.assertEqual(sess.run(global_step), 1)
      self.assertAllEqual(sess.run(unused), [3.0])

  def test_no_gradient_at_all_is_an_error(self):
    optimizer = hierarchical_rnn.HierarchicalRNN([4])
    x = tf.Variable([1.0])
    with self.assertRaises(ValueError):
      optimizer.apply_gradients([(None, x)])

  def _first_steps(self, restore_first, path):
    with tf.Graph().as_default():
      tf.set_random_seed(0)
      optimizer = hierarchical_rnn.HierarchicalRNN(
          [10, 20, 20], random_seed=1, **ENTRY_POINT_KWARGS)
      meta_vars = tf.global_variables()
      problem = pg.Quadratic(8, random_seed=3)
      x = tf.Variable(np.ones([8, 1], np.float32))
      loss = problem.objective([x])
      step = optimizer.minimize(loss, var_list=[x])
      others = [v for v in tf.global_variables() if v not in meta_vars]
      saver = tf.train.Saver(meta_vars)
      losses = []
      with tf.Session() as sess:
        if restore_first:
          saver.restore(sess, path)
          sess.run(tf.variables_initializer(others))
        else:
          sess.run(tf.global_variables_initializer())
          saver.restore(sess, path)
        for _ in range(5):
          sess.run(step)
          losses.append(sess.run(loss))
    return np.array(losses)

  def test_restoring_before_or_after_initialising_gives_the_same_steps(self):
    path = test_util.published_checkpoint()
    if path is None:
      self.skipTest("published checkpoint not found")
    before = self._first_steps(True, path)
    after = self._first_steps(False, path)
    self.assertAllClose(before, after, rtol=1e-6)
    self.assertTrue(np.all(np.isfinite(before)))


if __name__ == "__main__":
  tf.test.main()
