"""Tests of the persistent evolution-strategies estimator (`pes`).

On the one-scalar GlobalLearningRate and a quadratic, over trajectories of
three partial unrolls: its estimate against particle trajectories evaluated
separately; its mean over many particles against the gradient of each
truncation's loss through the whole trajectory, which truncated ES misses;
its restart on a new trajectory. Then short HierarchicalRNN meta-training
runs that save, move, resume and repeat.
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
from meta_training.estimators import evolution_strategies
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
_TRUNCATIONS = 3


def _settings(name="pes", **overrides):
  return meta_config.MetaOptimizer(gradient_estimator=name, **overrides)


def _feed_for(truncation, x0=None):
  """feed_for of partial unroll `truncation` of a trajectory from `x0`."""
  x0 = [np.ones((4, 1), np.float32)] if x0 is None else x0
  return lambda out, task=0: data_lib.feed(
      out, x0, [_STEPS] * _TRUNCATIONS, truncation, data_lib.NO_DATA,
      truncation == 0)


def _initialize(sess):
  sess.run([tf.global_variables_initializer(),
            tf.local_variables_initializer()])


def _trajectory_losses(sess, graph, values):
  """The main unroll's meta-objectives of one trajectory whose truncation
  k runs with the meta-parameter set to values[k], its state carried in the
  graph's variables."""
  out = graph.train_output
  [var] = graph.meta_vars
  losses = []
  for k, value in enumerate(values):
    var.load(value, sess)
    loss, _ = sess.run([out.meta_objective, graph.propagate_op],
                       _feed_for(k)(out))
    losses.append(loss)
  return np.array(losses, np.float64)


def _estimates(sess, graph, epsilons):
  """Runs a trajectory's truncations through the estimator with fixed
  directions epsilons [K, N], the main unroll carried; returns per
  truncation (estimate, objectives [N, 2])."""
  estimator = graph.estimator
  out = graph.train_output
  results = []
  for k, row in enumerate(epsilons):
    feed_for = _feed_for(k)
    [start] = estimator.start(sess, feed_for)
    [estimate], objectives = estimator.estimate(
        sess, feed_for, [start], epsilons=[[np.float32(e)] for e in row])
    results.append((float(estimate), objectives.astype(np.float64)))
    feed = feed_for(out)
    feed.update(zip(out.start_values, start))
    sess.run(graph.propagate_op, feed)
  return results


class EstimateTest(tf.test.TestCase):

  def test_the_estimate_weights_each_pair_by_its_accumulated_directions(self):
    sigma = 0.002
    epsilons = np.array([[0.7, -1.3, 0.25], [-0.4, 0.9, 1.6],
                         [1.1, 0.3, -0.8]], np.float32)
    with tf.Graph().as_default():
      graph = graph_lib.build_meta_graph(
          _QUADRATIC, _GLR, _settings(es_sigma=sigma, es_pairs=3))
      [var] = graph.meta_vars
      with tf.Session() as sess:
        _initialize(sess)
        theta = sess.run(var)
        results = _estimates(sess, graph, epsilons)
        # Each particle on its own: its trajectory at theta +/- sigma eps^(k)
        # truncation by truncation.
        separate = np.stack([np.stack([
            _trajectory_losses(sess, graph, [
                theta + np.float32(sign * sigma) * e for e in epsilons[:, i]])
            for sign in (1., -1.)], axis=-1)
            for i in range(3)], axis=1)  # [K, N, 2]
    accumulated = np.cumsum(epsilons.astype(np.float64), axis=0)
    for k, (estimate, objectives) in enumerate(results):
      self.assertAllClose(objectives, separate[k], rtol=1e-6, atol=0)
      differences = separate[k, :, 0] - separate[k, :, 1]
      self.assertTrue(np.all(differences != 0.))
      expected = np.sum(differences * accumulated[k]) / (2 * sigma * 3)
      self.assertAllClose(estimate, expected, rtol=1e-5)
      if k:
        # Not ES's weighting by this truncation's directions alone.
        truncated = np.sum(differences * epsilons[k]) / (2 * sigma * 3)
        self.assertNotAllClose(estimate, truncated, rtol=1e-2)

  def test_it_estimates_the_gradient_through_the_whole_trajectory(self):
    # Truncation k's loss depends on theta through every earlier truncation
    # (the parameters it starts from). PES's mean over many particles is
    # its gradient through them all; truncated ES's is the gradient through
    # truncation k's own steps. Each estimate is a mean over N pairs: the
    # tolerance is 4 standard errors of that mean.
    sigma, pairs = 1e-3, 500
    epsilons = np.random.RandomState(0).standard_normal(
        (_TRUNCATIONS, pairs)).astype(np.float32)
    found = {}
    for name in ("pes", "es"):
      with tf.Graph().as_default():
        graph = graph_lib.build_meta_graph(
            _QUADRATIC, _GLR, _settings(name, es_sigma=sigma, es_pairs=pairs))
        with tf.Session() as sess:
          _initialize(sess)
          found[name] = _estimates(sess, graph, epsilons)
          if name == "pes":
            theta = float(sess.run(graph.meta_vars[0]))
            step = 1e-2 * theta
            full = (_trajectory_losses(sess, graph, [theta + step] * 3) -
                    _trajectory_losses(sess, graph, [theta - step] * 3)) / (
                        2 * step)
    accumulated = np.cumsum(epsilons.astype(np.float64), axis=0)
    for k in range(1, _TRUNCATIONS):
      for name, weights in (("pes", accumulated[k]), ("es", epsilons[k])):
        estimate, objectives = found[name][k]
        terms = (objectives[:, 0] - objectives[:, 1]) * weights / (2 * sigma)
        self.assertAllClose(estimate, np.mean(terms), rtol=1e-5)
        error = abs(estimate - full[k])
        tolerance = 4 * np.std(terms) / np.sqrt(pairs)
        if name == "pes":
          self.assertLess(error, tolerance, (k, estimate, full[k]))
        else:
          self.assertGreater(error, 10 * tolerance, (k, estimate, full[k]))
          # ES misses most of it on this problem.
          self.assertLess(abs(estimate), 0.5 * abs(full[k]))

  def test_a_new_trajectory_restarts_the_particles(self):
    sigma, pairs = 0.002, 4
    rng = np.random.RandomState(2)
    epsilons = rng.standard_normal((3, pairs)).astype(np.float32)
    other_start = [rng.standard_normal((4, 1)).astype(np.float32)]
    with tf.Graph().as_default():
      graph = graph_lib.build_meta_graph(
          _QUADRATIC, _GLR, _settings(es_sigma=sigma, es_pairs=pairs))
      estimator = graph.estimator
      self.assertEqual(estimator.particles, [None])
      with tf.Session() as sess:
        _initialize(sess)
        _estimates(sess, graph, epsilons[:2])
        self.assertAllClose(np.ravel(estimator.accumulated[0]),
                            epsilons[0] + epsilons[1], rtol=1e-6)
        # A first unroll from other parameters: the particles start there,
        # as ES's pairs do, and xi is this truncation's directions alone.
        feed_for = _feed_for(0, other_start)
        [start] = estimator.start(sess, feed_for)
        fixed = [[np.float32(e)] for e in epsilons[2]]
        pes, pes_objectives = estimator.estimate(sess, feed_for, [start],
                                                 epsilons=fixed)
        es, es_objectives = evolution_strategies.EvolutionStrategies.estimate(
            estimator, sess, feed_for, [start], epsilons=fixed)
        self.assertAllEqual(np.ravel(estimator.accumulated[0]), epsilons[2])
        for up, down in estimator.particles[0]:
          self.assertNotAllClose(up[1], start[1])
          self.assertNotAllClose(up[1], down[1])
        # Directions for another number of pairs than the trajectory's.
        with self.assertRaisesRegex(ValueError, "3 directions for a "
                                    "trajectory of 4 particle pairs"):
          estimator.estimate(sess, _feed_for(1), [start], epsilons=fixed[:3])
        # A run that does not carry the main state on ends the trajectory.
        estimator.run(sess, _feed_for(1), False, carry=True, fetches={})
        self.assertLen(estimator.particles[0], pairs)
        estimator.run(sess, _feed_for(2), False, carry=False, fetches={})
        self.assertEqual(estimator.particles, [None])
        self.assertEqual(estimator.accumulated, [None])
    self.assertAllEqual(pes_objectives, es_objectives)
    self.assertAllClose(pes, es, rtol=1e-6)


class RegistrationTest(tf.test.TestCase):

  def test_pes_is_registered_forward_only_and_without_imitation(self):
    self.assertIn("pes", estimators.names())
    self.assertTrue(estimators.forward_only("pes"))
    self.assertFalse(estimators.imitates("pes"))
    with tf.Graph().as_default():
      with self.assertRaisesRegex(
          ValueError, "the pes gradient estimator has no imitation "
          "objective; imitation needs one that has \\(truncated_backprop\\)"):
        graph_lib.build_meta_graph(_QUADRATIC, _GLR, _settings(),
                                   imitation=True)


def _train(logdir, iterations=2, seed=1):
  """A short HierarchicalRNN run with PES on a quadratic: trajectories of 2
  partial unrolls (so the particles carry once), one meta-update each;
  returns its log. The forward step is not XLA-compiled, to save the
  compilations (see evolution_strategies_test.py)."""
  values = dict(num_meta_iterations=iterations, meta_learning_rate=1e-2,
                fix_unroll=True, fix_unroll_length=2, fix_num_steps=4,
                fix_num_steps_eval=4, evaluation_epochs=1,
                gradient_estimator="pes", es_pairs=2, es_sigma=0.05)
  spec = settings.optimizer_spec(settings.defaults())
  out = io.StringIO()
  metaopt.train_optimizer(
      logdir, spec._replace(kwargs=dict(spec.kwargs, xla_apply=False)),
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
    cls.root = tempfile.mkdtemp(prefix="persistent_es")

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
    for name in names:
      self.assertFalse(np.array_equal(start[name], end[name]), name)
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
