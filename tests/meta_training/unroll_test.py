"""Tests of meta_training/unroll.py: the meta-training unroll and helpers.

GlobalLearningRate (theta' = theta - lr g) makes the unrolled trajectories
easy to reproduce in numpy.
"""

from tests import test_util

import numpy as np
import tensorflow.compat.v1 as tf

from meta_training import unroll as unroll_lib
from optimizer import global_learning_rate
from problems import problem_generator as pg


def _quadratic_numpy(problem):
  w, y = problem.w.astype(np.float64), problem.y.astype(np.float64)
  value = lambda x: 0.5 * np.sum((w.dot(x) - y)**2)
  grad = lambda x: w.T.dot(w.dot(x) - y)
  return value, grad, w.T.dot(w)


def _run_unroll(sess, out, x0, steps, first=True, **extra):
  feed = {out.objective_weights: np.ones(steps) / steps, out.first_unroll: first,
          out.reset_state: first}
  feed.update(zip(out.initial_params, x0))
  for key, value in extra.items():
    feed[getattr(out, key)] = value
  return feed


class ScaleObjectiveTest(tf.test.TestCase):

  def _scaled(self, **kwargs):
    optimizer = global_learning_rate.GlobalLearningRate(**kwargs)
    objs = np.array([2.0, 1.5, 0.5], np.float32)
    return self.evaluate(unroll_lib.scale_objective(
        optimizer.config, tf.constant(3.0), tf.constant(objs),
        tf.constant(4.0))), objs

  def test_linear_scaling_divides_total_by_initial(self):
    value, _ = self._scaled()
    self.assertAllClose(value, 3.0 / (4.0 + 1e-6))

  def test_log_objective_averages_log_ratios(self):
    value, objs = self._scaled(use_log_objective=True)
    self.assertAllClose(value, np.mean(np.log(objs / (4.0 + 1e-6) + 1e-6)))

  def test_numerator_epsilon_moves_the_epsilon(self):
    value, objs = self._scaled(use_log_objective=True,
                               use_numerator_epsilon=True)
    self.assertAllClose(value,
                        np.mean(np.log((objs + 1e-6) / (4.0 + 1e-6))))


class LocalStateVariablesTest(tf.test.TestCase):

  def test_names_count_uses_of_shape_and_dtype(self):
    first, _ = unroll_lib.local_state_variables([tf.zeros([784, 100])],
                                         tf.constant(True))
    second, _ = unroll_lib.local_state_variables([tf.zeros([784, 100]),
                                           tf.constant(1.0)],
                                          tf.constant(True))
    self.assertEqual(first[0].op.name, "LOL/local_state_784_100_float32_0")
    self.assertEqual([v.op.name for v in second],
                     ["LOL/local_state_784_100_float32_1",
                      "LOL/local_state__float32_0"])
    self.assertTrue(all(unroll_lib.is_local_state_variable(v.op)
                        for v in first + second))
    self.assertEmpty(tf.global_variables())
    self.assertLen(tf.local_variables(), 3)

  def test_values_switch_between_init_values_and_variables(self):
    switch = tf.placeholder(tf.bool, [])
    variables, values = unroll_lib.local_state_variables([tf.ones([2])],
                                                         switch)
    with self.cached_session() as sess:
      sess.run(tf.local_variables_initializer())
      self.assertAllEqual(sess.run(values[0], {switch: True}), [1., 1.])
      self.assertAllEqual(sess.run(values[0], {switch: False}), [0., 0.])
      sess.run(tf.assign(variables[0], [3., 4.]))
      self.assertAllEqual(sess.run(values[0], {switch: False}), [3., 4.])

  def test_partially_known_shapes_are_rejected(self):
    with self.assertRaisesRegex(ValueError, "fully defined"):
      unroll_lib.create_local_state_variable_name(
          tf.placeholder(tf.float32, [None, 3]))


class UnrollTest(tf.test.TestCase):

  def _setup(self, lr=0.02, ndim=4, **kwargs):
    problem = pg.Quadratic(ndim, random_seed=3)
    optimizer = global_learning_rate.GlobalLearningRate(lr, **kwargs)
    return problem, optimizer

  def test_unroll_follows_gradient_descent(self):
    problem, optimizer = self._setup()
    out = unroll_lib.build_unroll(optimizer, problem)
    value, grad, _ = _quadratic_numpy(problem)
    x = np.random.RandomState(0).randn(4, 1)
    with self.cached_session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      feed = _run_unroll(sess, out, [x.astype(np.float32)], 5)
      objectives, metaobj, initial = sess.run(
          [out.problem_objectives, out.meta_objective, out.initial_objective], feed)
    expected = [value(x)]
    for _ in range(5):
      expected.append(value(x))
      x = x - 0.02 * grad(x)
    self.assertAllClose(objectives, expected, rtol=1e-4)
    self.assertAllClose(initial, expected[0], rtol=1e-5)
    self.assertAllClose(metaobj, np.mean(expected[1:]) / (expected[0] + 1e-6),
                        rtol=1e-4)

  def test_partial_unrolls_continue_the_trajectory(self):
    problem, optimizer = self._setup()
    out = unroll_lib.build_unroll(optimizer, problem)
    copy = [tf.assign(v, value) for v, value in
            zip(out.carried_variables, out.carried_values)]
    x0 = [np.random.RandomState(1).randn(4, 1).astype(np.float32)]
    with self.cached_session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      whole = sess.run(out.problem_objectives, _run_unroll(sess, out, x0, 6))
      first_feed = _run_unroll(sess, out, x0, 3)
      first, _ = sess.run([out.problem_objectives, copy], first_feed)
      second, initial = sess.run(
          [out.problem_objectives, out.initial_objective],
          _run_unroll(sess, out, x0, 3, first=False))
    self.assertAllClose(np.concatenate([first, second[1:]]), whole,
                        rtol=1e-5)
    self.assertAllClose(initial, whole[0], rtol=1e-6)

  def test_divergence_stops_the_unroll_early(self):
    problem, optimizer = self._setup(lr=5.0, obj_train_max_multiplier=2)
    out = unroll_lib.build_unroll(optimizer, problem)
    x0 = [np.ones((4, 1), np.float32)]
    with self.cached_session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      objectives = sess.run(out.problem_objectives,
                            _run_unroll(sess, out, x0, 20))
    self.assertLess(len(objectives), 21)
    self.assertGreaterEqual(objectives[-1], 2 * objectives[0])
    self.assertTrue(np.all(objectives[:-1] < 2 * objectives[0]))

  def test_teacher_forcing_follows_the_teacher_and_scores_own_steps(self):
    problem, optimizer = self._setup()
    out = unroll_lib.build_unroll(optimizer, problem)
    value, grad, _ = _quadratic_numpy(problem)
    rng = np.random.RandomState(2)
    x = rng.randn(4, 1)
    teacher = 0.1 * rng.randn(3, 4, 1)
    with self.cached_session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      feed = _run_unroll(sess, out, [x.astype(np.float32)], 3,
                         imitating=True)
      feed[out.teacher_steps[0]] = teacher.astype(np.float32)
      objectives, mse, final = sess.run(
          [out.problem_objectives, out.imitation_loss, out.carried_values[1]],
          feed)
    expected_mse = 0.
    for t in range(3):
      step = 0.02 * grad(x)
      expected_mse += np.sum(0.5 * (step - teacher[t])**2) / 4 / 3
      x = x - teacher[t]
    self.assertAllClose(final, x, rtol=1e-4, atol=1e-5)
    self.assertAllClose(mse, expected_mse, rtol=1e-4)
    self.assertAllClose(objectives[-1], value(x + teacher[2]), rtol=1e-4)

  def test_second_derivatives_can_be_cut(self):
    value, grad, hessian = None, None, None
    x0 = np.random.RandomState(4).randn(4, 1)
    lr = 0.05
    results = {}
    for use_second in (True, False):
      with tf.Graph().as_default():
        problem, optimizer = self._setup(lr=lr,
                                         use_second_derivatives=use_second)
        value, grad, hessian = _quadratic_numpy(problem)
        out = unroll_lib.build_unroll(optimizer, problem)
        # Weights select F_2, the objective after two steps.
        meta_grad = tf.gradients(out.meta_objective, [optimizer.learning_rate])[0]
        with tf.Session() as sess:
          sess.run([tf.global_variables_initializer(),
                    tf.local_variables_initializer()])
          feed = _run_unroll(sess, out, [x0.astype(np.float32)], 3)
          feed[out.objective_weights] = np.array([0., 0., 1.], np.float32)
          results[use_second] = sess.run(meta_grad, feed)
    g0 = grad(x0)
    x1 = x0 - lr * g0
    g1 = grad(x1)
    x2 = x1 - lr * g1
    f0 = value(x0) + 1e-6
    first_order = grad(x2).T.dot(-g0 - g1).item() / f0
    full = grad(x2).T.dot(-g0 - g1 + lr * hessian.dot(g0)).item() / f0
    self.assertAllClose(results[True], full, rtol=1e-3)
    self.assertAllClose(results[False], first_order, rtol=1e-3)
    self.assertNotAllClose(results[True], results[False])


class RegularizerHookTest(tf.test.TestCase):

  def _build(self, differentiable=False, **kwargs):
    problem = pg.Quadratic(4, random_seed=5)
    optimizer = global_learning_rate.GlobalLearningRate(0.02)
    calls = []
    if differentiable:
      out = unroll_lib.build_unroll(optimizer, problem, regularizer_fn=lambda obj, params: obj,
                            **kwargs)
      return problem, out, calls

    def counted_objective(objective, params):
      del params
      def count(x):
        calls.append(1)
        return x
      return tf.numpy_function(count, [objective], tf.float32,
                               stateful=True)

    out = unroll_lib.build_unroll(optimizer, problem, regularizer_fn=counted_objective, **kwargs)
    return problem, out, calls

  def test_meta_regularizer_is_added_only_when_switched_on(self):
    problem, out, calls = self._build(meta_regularizer_weight=0.5)
    value, grad, _ = _quadratic_numpy(problem)
    x = np.random.RandomState(6).randn(4, 1)
    with self.cached_session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      feed = _run_unroll(sess, out, [x.astype(np.float32)], 4)
      plain = sess.run(out.meta_objective, feed)
      self.assertEmpty(calls)  # switched off: never computed
      feed[out.regularizer_on] = True
      regularized = sess.run(out.meta_objective, feed)
    self.assertLen(calls, 4)
    batch_objectives = []
    for _ in range(4):
      batch_objectives.append(value(x))
      x = x - 0.02 * grad(x)
    self.assertAllClose(regularized - plain, 0.5 * sum(batch_objectives),
                        rtol=1e-4)

  def test_optimizee_regularizer_changes_the_inner_gradients(self):
    problem, out, _ = self._build(differentiable=True,
                                  optimizee_regularizer_weight=1.0)
    value, grad, _ = _quadratic_numpy(problem)
    x = np.random.RandomState(7).randn(4, 1)
    with self.cached_session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      objectives = sess.run(out.problem_objectives,
                            _run_unroll(sess, out, [x.astype(np.float32)], 3))
    # f + 1.0 * f has gradient 2 grad(f): steps of size 2 lr.
    expected = [value(x)]
    for _ in range(3):
      expected.append(value(x))
      x = x - 2 * 0.02 * grad(x)
    self.assertAllClose(objectives, expected, rtol=1e-4)

  def test_weights_need_a_regularizer(self):
    problem = pg.Quadratic(2, random_seed=0)
    optimizer = global_learning_rate.GlobalLearningRate()
    with self.assertRaisesRegex(ValueError, "regularizer_fn"):
      unroll_lib.build_unroll(optimizer, problem, meta_regularizer_weight=0.1)


class RecordObjectivesTest(tf.test.TestCase):
  """Evaluation's shortcut: the whole-data objective at the last step only."""

  def _build(self, **kwargs):
    problem = pg.FullyConnected(4, 3, hidden_sizes=(3,), random_seed=0)
    optimizer = global_learning_rate.GlobalLearningRate(0.5, **kwargs)
    out = unroll_lib.build_unroll(optimizer, problem)
    rng = np.random.RandomState(5)
    x0 = [rng.randn(*shape).astype(np.float32)
          for shape in problem.param_shapes]
    feed = _run_unroll(None, out, x0, 6,
                       mini_data=rng.randn(40, 4).astype(np.float32),
                       mini_labels=rng.randint(0, 3, 40).astype(np.int32),
                       batches=rng.randint(0, 40, (6, 5)).astype(np.int32))
    return out, feed

  def _objectives(self, out, feed, record, trace=False):
    feed = dict(feed)
    feed[out.record_objectives] = record
    with tf.Session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      options = tf.RunOptions(
          trace_level=tf.RunOptions.FULL_TRACE if trace else
          tf.RunOptions.NO_TRACE)
      metadata = tf.RunMetadata()
      objectives = sess.run(out.problem_objectives, feed, options=options,
                            run_metadata=metadata)
    softmax_runs = [node.node_name
                    for device in metadata.step_stats.dev_stats
                    for node in device.node_stats
                    if "SparseSoftmaxCrossEntropyWithLogits" in node.node_name
                    and node.node_name.startswith("while/cond")]
    return objectives, softmax_runs

  def test_the_last_objective_is_the_same_when_only_it_is_recorded(self):
    out, feed = self._build()
    every, _ = self._objectives(out, feed, True)
    last_only, _ = self._objectives(out, feed, False)
    self.assertLen(last_only, 7)
    self.assertAllClose(last_only[-1], every[-1], rtol=1e-6)
    self.assertAllClose(last_only[0], every[0], rtol=1e-6)
    # The steps before the last record the batch objective instead.
    self.assertNotAllClose(last_only[1:-1], every[1:-1])

  def test_the_whole_data_objective_runs_once_when_only_the_last_counts(self):
    out, feed = self._build()
    _, every = self._objectives(out, feed, True, trace=True)
    _, last_only = self._objectives(out, feed, False, trace=True)
    self.assertLen(every, 6)
    self.assertLen(last_only, 1)

  def test_an_objective_limit_records_every_step_whatever_is_fed(self):
    # The limit's loop condition reads every recorded objective.
    out, feed = self._build(obj_train_max_multiplier=1e6)
    every, _ = self._objectives(out, feed, True)
    last_only, _ = self._objectives(out, feed, False)
    self.assertAllClose(last_only, every, rtol=1e-6)


if __name__ == "__main__":
  tf.test.main()


def _perturbable_optimizers():
  """Optimizers whose every meta-parameter read the test must catch."""
  from optimizer import coordinatewise_rnn  # pylint: disable=g-import-not-at-top
  from optimizer import hierarchical_rnn  # pylint: disable=g-import-not-at-top
  from optimizer import learning_rate_schedule  # pylint: disable=g-import-not-at-top
  from optimizer import trainable_adam  # pylint: disable=g-import-not-at-top
  return {
      "hrnn": lambda: hierarchical_rnn.HierarchicalRNN(
          [10, 20, 20], init_lr_range=(1e-2, 1e-2), use_attention=True,
          use_gradient_shortcut=True, random_seed=1),
      "crnn": lambda: coordinatewise_rnn.CoordinatewiseRNN(
          [8, 8], "GRUCell", init_lr_range=(1e-2, 1e-2), random_seed=3),
      "adam": lambda: trainable_adam.TrainableAdam(1e-2),
      "schedule": lambda: learning_rate_schedule.LearningRateSchedule(
          0.05, n_steps=3),
      "global": lambda: global_learning_rate.GlobalLearningRate(0.05),
  }


class PerturbedMetaParametersTest(tf.test.TestCase):
  """An unroll built at given meta-parameter values (`meta_values`) is the
  unroll whose variables hold those values."""

  def _check(self, name, forward_only):
    rng = np.random.RandomState(0)
    problem = pg.FullyConnected(5, 3, hidden_sizes=(4,), random_seed=0)
    optimizer = _perturbable_optimizers()[name]()
    meta_vars = tf.trainable_variables()
    at_variables = unroll_lib.build_unroll(optimizer, problem,
                                           forward_only=forward_only)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      start = sess.run(meta_vars)
    moved = [(v + 0.1 * rng.randn(*np.shape(v))).astype(np.float32)
             for v in start]
    values = {v.op.name: tf.constant(m) for v, m in zip(meta_vars, moved)}
    at_values = unroll_lib.build_unroll(optimizer, problem,
                                        forward_only=forward_only,
                                        meta_values=values)
    # The unroll at given values never reads a meta-parameter variable.
    if not forward_only:
      self.assertEqual(
          [v.op.name for v, g in zip(meta_vars, tf.gradients(
              at_values.meta_objective, meta_vars)) if g is not None], [])
    x0 = [0.5 * rng.randn(*s).astype(np.float32)
          for s in problem.param_shapes]
    data = rng.randn(20, 5).astype(np.float32)
    labels = rng.randint(0, 3, 20).astype(np.int32)
    batches = rng.randint(0, 20, (3, 6)).astype(np.int32)
    fetch = lambda out: [out.meta_objective, out.problem_objectives,
                         out.carried_values]
    with tf.Session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      feeds = [_run_unroll(sess, out, x0, 3, mini_data=data,
                           mini_labels=labels, batches=batches)
               for out in (at_variables, at_values)]
      before = sess.run(at_variables.meta_objective, feeds[0])
      given = sess.run(fetch(at_values), feeds[1])
      for var, value in zip(meta_vars, moved):
        var.load(value, sess)
      assigned = sess.run(fetch(at_variables), feeds[0])
    self.assertAllClose(given, assigned, rtol=1e-6, atol=1e-7)
    # The perturbation matters: the start's meta-objective differs.
    self.assertNotAllClose(before, given[0])

  def test_every_optimizer_reads_the_given_values(self):
    for name in _perturbable_optimizers():
      with self.subTest(name), tf.Graph().as_default():
        self._check(name, forward_only=False)

  def test_the_forward_step_reads_the_given_values(self):
    with tf.Graph().as_default():
      self._check("hrnn", forward_only=True)
