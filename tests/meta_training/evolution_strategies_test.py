"""Tests of the antithetic evolution-strategies estimator (`es`).

Its estimate against the two perturbed meta-objectives evaluated
separately and against backprop's meta-gradient (the one-scalar
GlobalLearningRate on a quadratic); the pairs' shared start and data (a
HierarchicalRNN with random initial learning rates on a small MLP); a graph
without meta-gradient ops; its meta-updates (clipping, skips, L2); and short
HierarchicalRNN meta-training runs that save, move, resume and repeat.
"""

from tests import test_util

import io
import os
import shutil
import tempfile

import numpy as np
import tensorflow.compat.v1 as tf

import metaopt
from meta_training import config as meta_config
from meta_training import data as data_lib
from meta_training import estimators
from meta_training import graph as graph_lib
from optimizer import checkpoint_files
from optimizer import global_learning_rate
from optimizer import provenance
from optimizer import settings
from problems import problem_generator as pg
from problems import problem_spec
from run_control import configs

_QUADRATIC = problem_spec.Spec(pg.Quadratic, (4,), {"random_seed": 0})
_GLR = problem_spec.Spec(global_learning_rate.GlobalLearningRate, (0.01,), {})
_STEPS = 5


def _es(**overrides):
  return meta_config.MetaOptimizer(gradient_estimator="es", **overrides)


def _glr_feed_for():
  x0 = [np.ones((4, 1), np.float32)]
  return lambda out, task=0: data_lib.feed(out, x0, [_STEPS], 0,
                                           data_lib.NO_DATA, True)


def _with_start(feed, out, start):
  feed = dict(feed)
  feed.update(zip(out.start_values, start))
  return feed


def _initialize(sess):
  sess.run([tf.global_variables_initializer(),
            tf.local_variables_initializer()])


class EstimateTest(tf.test.TestCase):
  """GlobalLearningRate on a quadratic: one scalar meta-parameter theta."""

  def test_the_estimate_is_the_antithetic_formula_of_separate_objectives(self):
    sigma, draws = 0.002, [0.7, -1.3, 0.25]
    with tf.Graph().as_default():
      graph = graph_lib.build_meta_graph(_QUADRATIC, _GLR,
                                         _es(es_sigma=sigma))
      estimator, out = graph.estimator, graph.train_output
      [var] = graph.meta_vars
      feed_for = _glr_feed_for()
      with tf.Session() as sess:
        _initialize(sess)
        theta = sess.run(var)
        [start] = estimator.start(sess, feed_for)
        estimate, objectives = estimator.estimate(
            sess, feed_for, [start],
            epsilons=[[np.float32(e)] for e in draws])
        # Each perturbed meta-objective on its own: the main unroll with
        # the variable set to theta +/- sigma eps.
        separate = []
        for e in draws:
          pair = []
          for sign in (1., -1.):
            var.load(np.float32(theta) + np.float32(sign * sigma) *
                     np.float32(e), sess)
            pair.append(sess.run(out.meta_objective,
                                 _with_start(feed_for(out), out, start)))
          separate.append(pair)
    separate = np.array(separate, np.float64)
    self.assertAllClose(objectives, separate, rtol=1e-6, atol=0)
    self.assertTrue(np.all(separate[:, 0] != separate[:, 1]))
    expected = np.sum((separate[:, 0] - separate[:, 1]) * draws) / (
        2 * sigma * len(draws))
    self.assertNotEqual(expected, 0.)
    self.assertAllClose(estimate[0], expected, rtol=1e-5)

  def _estimate_and_gradient(self, sigma, draws):
    """The ES estimate from `draws` and backprop's meta-gradient of the
    same unroll."""
    with tf.Graph().as_default():
      graph = graph_lib.build_meta_graph(_QUADRATIC, _GLR,
                                         _es(es_sigma=sigma))
      estimator, out = graph.estimator, graph.train_output
      [backprop] = tf.gradients(out.meta_objective, graph.meta_vars)
      feed_for = _glr_feed_for()
      with tf.Session() as sess:
        _initialize(sess)
        [start] = estimator.start(sess, feed_for)
        [estimate], _ = estimator.estimate(
            sess, feed_for, [start],
            epsilons=[[np.float32(e)] for e in draws])
        exact = sess.run(backprop, _with_start(feed_for(out), out, start))
    return float(estimate), float(exact)

  def test_it_approaches_the_meta_gradient_as_sigma_shrinks(self):
    # For one parameter each antithetic pair gives L'(theta) eps^2 plus
    # O(sigma^2): with the draws fixed, estimate / mean(eps^2) -> L'.
    draws = np.random.RandomState(0).standard_normal(4).astype(np.float32)
    mean_square = float(np.mean(np.square(draws.astype(np.float64))))
    errors = []
    for sigma in (4e-3, 4e-4):
      estimate, exact = self._estimate_and_gradient(sigma, draws)
      self.assertNotEqual(exact, 0.)
      errors.append(abs(estimate / mean_square - exact) / abs(exact))
    self.assertLess(errors[1], errors[0] / 4)
    self.assertLess(errors[1], 2e-3)

  def test_it_approaches_the_meta_gradient_as_the_pairs_grow(self):
    # At a small sigma the estimate is L'(theta) mean(eps^2), and mean(eps^2)
    # over N pairs has mean 1 and standard deviation sqrt(2 / N).
    rng = np.random.RandomState(1)
    for pairs in (10, 1000):
      draws = rng.standard_normal(pairs).astype(np.float32)
      estimate, exact = self._estimate_and_gradient(4e-4, draws)
      mean_square = float(np.mean(np.square(draws.astype(np.float64))))
      self.assertAllClose(estimate, exact * mean_square, rtol=2e-3, atol=0)
      self.assertAllClose(estimate, exact, rtol=4 * np.sqrt(2. / pairs),
                          atol=0)

  def test_its_own_draws_are_standard_normal_and_seeded(self):
    def draw():
      with tf.Graph().as_default():
        tf.set_random_seed(3)
        graph = graph_lib.build_meta_graph(_QUADRATIC, _GLR, _es())
        with tf.Session() as sess:
          _initialize(sess)
          return np.array([sess.run(graph.estimator.epsilon)[0]
                           for _ in range(2000)])
    first = draw()
    self.assertAllEqual(first, draw())
    self.assertNear(np.mean(first), 0., 4 / np.sqrt(2000))
    self.assertNear(np.std(first), 1., 4 / np.sqrt(2000))


class MetaUpdateTest(tf.test.TestCase):
  """The estimate is applied as every estimator's is (`meta_update`)."""

  def _apply(self, estimate, **overrides):
    with tf.Graph().as_default():
      graph = graph_lib.build_meta_graph(
          _QUADRATIC, _GLR, _es(learning_rate=0.1, rms_decay=0.9,
                                rms_epsilon=1e-10, **overrides))
      estimator = graph.estimator
      [var] = graph.meta_vars
      with tf.Session() as sess:
        _initialize(sess)
        before = sess.run(var)
        sess.run(estimator.train_op,
                 {estimator.estimate_input[0]: np.float32(estimate)})
        skipped = (None if estimator.skipped is None
                   else sess.run(estimator.skipped))
        return before, sess.run(var), sess.run(graph.global_step), skipped

  def test_the_estimate_is_clipped_and_applied_by_rmsprop(self):
    # TF1 RMSProp, its mean-square slot at 1: theta - lr g / sqrt(ms).
    before, after, step, skipped = self._apply(7., gradient_clip=2.)
    self.assertAllClose(after, before - 0.1 * 2. / np.sqrt(0.9 + 0.1 * 4.),
                        rtol=1e-6)
    self.assertEqual((step, skipped), (1, None))

  def test_the_l2_penalty_adds_its_exact_gradient(self):
    before, after, _, _ = self._apply(0., l2_reg=0.5)
    g = 2 * 0.5 * before
    self.assertAllClose(after, before - 0.1 * g / np.sqrt(0.9 + 0.1 * g * g),
                        rtol=1e-6)

  def test_a_non_finite_estimate_is_zeroed_or_skipped(self):
    before, after, step, _ = self._apply(np.nan)
    self.assertEqual((after, step), (before, 1))
    before, after, step, skipped = self._apply(np.nan, loss_ceiling=1.5)
    self.assertEqual((after, step, skipped), (before, 1, 1))


class RegistrationTest(tf.test.TestCase):

  def test_es_is_registered_forward_only_and_without_imitation(self):
    self.assertIn("es", estimators.names())
    self.assertTrue(estimators.forward_only("es"))
    self.assertFalse(estimators.forward_only("truncated_backprop"))
    self.assertFalse(estimators.imitates("es"))
    with tf.Graph().as_default():
      with self.assertRaisesRegex(
          ValueError, "the es gradient estimator has no imitation objective; "
          "imitation needs one that has \\(truncated_backprop\\)"):
        graph_lib.build_meta_graph(_QUADRATIC, _GLR, _es(), imitation=True)


_MLP = problem_spec.Spec(pg.FullyConnected, (5, 3),
                         {"hidden_sizes": (4,), "random_seed": 0})


def _uncompiled(spec):
  """A HierarchicalRNN spec whose forward step is not compiled with XLA
  (its compilation costs seconds per unroll)."""
  return spec._replace(kwargs=dict(spec.kwargs, xla_apply=False))


class SharedStartTest(tf.test.TestCase):
  """A HierarchicalRNN whose initial learning rates are random draws."""

  def test_the_pairs_and_the_main_unroll_start_alike_on_the_same_data(self):
    rng = np.random.RandomState(0)
    problem = _MLP.build()
    x0 = [rng.randn(*s).astype(np.float32) for s in problem.param_shapes]
    data = data_lib.UnrollData(
        rng.randn(20, 5).astype(np.float32),
        rng.randint(0, 3, 20).astype(np.int32),
        rng.randint(0, 20, (3, 6)).astype(np.int32), None)
    feed_for = lambda out, task=0: data_lib.feed(out, x0, [3], 0, data, True)
    spec = _uncompiled(settings.optimizer_spec(settings.defaults(),
                                               random_seed=0))
    with tf.Graph().as_default():
      tf.set_random_seed(0)
      graph = graph_lib.build_meta_graph(_MLP, spec, _es())
      estimator, out = graph.estimator, graph.train_output
      zeros = [np.zeros(e.get_shape().as_list(), np.float32)
               for e in estimator.epsilon]
      with tf.Session() as sess:
        _initialize(sess)
        [start] = estimator.start(sess, feed_for)
        _, [[up, down]] = estimator.estimate(sess, feed_for, [start],
                                             epsilons=[zeros])
        main = sess.run(out.meta_objective,
                        _with_start(feed_for(out), out, start))
        # A state reset draws other initial learning rates: another start,
        # another meta-objective.
        [other] = estimator.start(sess, feed_for)
        unshared = sess.run(out.meta_objective, feed_for(out))
        _, moved = estimator.estimate(sess, feed_for, [start])
    self.assertTrue(np.isfinite(main))
    self.assertEqual((up, down), (main, main))
    self.assertFalse(all(np.array_equal(a, b) for a, b in zip(start, other)))
    self.assertNotEqual(unshared, main)
    self.assertTrue(np.all(moved[:, 0] != moved[:, 1]))


def _op_types():
  return {op.type for op in tf.get_default_graph().get_operations()}


def _compiled():
  """Whether some op of the graph is compiled with XLA (jit_scope)."""
  for op in tf.get_default_graph().get_operations():
    try:
      if op.get_attr("_XlaCompile"):
        return True
    except ValueError:
      pass
  return False


def _meta_gradient_ops():
  """Ops of a meta-gradient: a top-level "gradients" scope, or the stacks
  a while loop keeps for its backward pass (memory growing with its
  length)."""
  graph = tf.get_default_graph()
  return ([op.name for op in graph.get_operations()
           if op.name.startswith("gradients")] +
          [t for t in _op_types() if t.startswith("Stack")])


class ForwardOnlyTest(tf.test.TestCase):

  def test_no_unroll_is_differentiated(self):
    spec = settings.optimizer_spec(settings.defaults())
    with tf.Graph().as_default():
      graph_lib.build_meta_graph(_MLP, spec, _es())
      self.assertEqual(_meta_gradient_ops(), [])
      # The three unrolls take the forward (XLA-compiled) step.
      self.assertTrue(_compiled())
    with tf.Graph().as_default():
      graph_lib.build_meta_graph(_MLP, spec, meta_config.MetaOptimizer())
      self.assertNotEqual(_meta_gradient_ops(), [])
      self.assertFalse(_compiled())


def _train(logdir, iterations=2, seed=1):
  """A short HierarchicalRNN run with ES on a quadratic: 2 unrolls (so 2
  meta-updates) per meta-iteration; returns its log. Its forward step is
  not XLA-compiled, to save the compilations (the compiled step at given
  meta-parameter values is tested in unroll_test.py)."""
  values = dict(num_meta_iterations=iterations, meta_learning_rate=1e-2,
                fix_unroll=True, fix_unroll_length=2, fix_num_steps=4,
                fix_num_steps_eval=4, evaluation_epochs=1,
                gradient_estimator="es", es_pairs=2, es_sigma=0.05)
  out = io.StringIO()
  metaopt.train_optimizer(
      logdir, _uncompiled(settings.optimizer_spec(settings.defaults())),
      [(problem_spec.Spec(pg.Quadratic, (3,), {"random_seed": 0}), None,
        None)],
      schedule=configs.from_flags(meta_config.Schedule, values),
      meta_optimizer=configs.from_flags(meta_config.MetaOptimizer, values),
      evaluation=configs.from_flags(meta_config.Evaluation, values),
      seed=seed, out=out)
  return out.getvalue()


def _tensors(logdir, name):
  reader = tf.train.load_checkpoint(os.path.join(logdir, name))
  return {n: reader.get_tensor(n)
          for n in reader.get_variable_to_shape_map()}


class MetaTrainingTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(prefix="evolution_strategies")

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def test_a_run_moves_saves_resumes_and_repeats(self):
    logdir = os.path.join(self.root, "run")
    log = _train(logdir)
    self.assertIn("meta-iteration 2/2", log)
    start = _tensors(logdir, checkpoint_files.INITIAL)
    end = _tensors(logdir, "model.ckpt-2")
    self.assertEqual(end["global_step"], 4)
    names = provenance.meta_parameter_names(start)
    self.assertLen(names, 31)
    moved = [n for n in names if not np.array_equal(start[n], end[n])]
    self.assertLen(moved, len(names))
    for name in names:
      self.assertTrue(np.all(np.isfinite(end[name])), name)
    # A seeded run repeats bit for bit.
    again = os.path.join(self.root, "again")
    _train(again)
    repeat = _tensors(again, "model.ckpt-2")
    self.assertCountEqual(repeat, end)
    for name in end:
      self.assertAllEqual(repeat[name], end[name], name)
    # Resumed, it goes on from its last checkpoint.
    log = _train(logdir, iterations=3)
    self.assertNotIn("meta-iteration 2/3", log)
    self.assertIn("meta-iteration 3/3", log)
    self.assertEqual(_tensors(logdir, "model.ckpt-3")["global_step"], 6)


if __name__ == "__main__":
  tf.test.main()
