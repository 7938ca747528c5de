"""The estimator interface is enough for a new estimator.

A central finite difference of the meta-objective in the one
meta-parameter of GlobalLearningRate, registered below in a few lines,
meta-trains through the same loop as truncated backprop; its estimate agrees
with backprop's meta-gradient.
"""

from tests import test_util

import io
import os

import numpy as np
import tensorflow.compat.v1 as tf

import metaopt
from meta_training import config as meta_config
from meta_training import data as data_lib
from meta_training import estimators
from meta_training import graph as graph_lib
from meta_training.estimators import base
from meta_training.estimators import meta_update
from optimizer import global_learning_rate
from problems import problem_generator as pg
from problems import problem_spec
from run_control import configs

_STEP = 1e-3


class CentralDifference(base.GradientEstimator):
  """(L(theta + h) - L(theta - h)) / 2h for a one-scalar optimizer."""

  def __init__(self, context):
    super().__init__(context)
    [var] = context.meta_vars
    self.unrolls = [context.unroll_fn({var.op.name: var + shift},
                                      forward_only=True)
                    for shift in (_STEP, -_STEP)]
    self.estimate = (self.unrolls[0].meta_objective -
                     self.unrolls[1].meta_objective) / (2 * _STEP)
    self.train_op = meta_update.apply(
        meta_update.optimizer(context.settings, context.global_step),
        [self.estimate], meta_update.clip([self.estimate], context.settings),
        [var], context.global_step, context.settings)

  def run(self, sess, feed_for, imitating, carry, fetches):
    del imitating, carry  # one unroll per meta-iteration in this test
    feed = feed_for(self.unroll, 0)
    for out in self.unrolls:
      feed.update(feed_for(out, 0))
    names = sorted(fetches)
    meta_objective, values, _ = sess.run(
        [self.unroll.meta_objective, [fetches[n] for n in names],
         self.train_op], feed)
    return dict(zip(names, values), meta_objective=meta_objective)


if "central_difference" not in estimators.names():
  estimators.register("central_difference", CentralDifference)

_SPEC = problem_spec.Spec(pg.Quadratic, (4,), {"random_seed": 0})
_OPTIMIZER = problem_spec.Spec(global_learning_rate.GlobalLearningRate,
                               (0.01,), {})


class ToyEstimatorTest(tf.test.TestCase):

  def test_its_estimate_agrees_with_the_meta_gradient(self):
    with tf.Graph().as_default():
      graph = graph_lib.build_meta_graph(
          _SPEC, _OPTIMIZER,
          meta_config.MetaOptimizer(gradient_estimator="central_difference"))
      estimator = graph.estimator
      [backprop] = tf.gradients(graph.train_output.meta_objective,
                                graph.meta_vars)
      x0 = [np.ones((4, 1), np.float32)]
      feeds = {}
      for out in [graph.train_output] + estimator.unrolls:
        feeds.update(data_lib.feed(out, x0, [5], 0, data_lib.NO_DATA, True))
      with tf.Session() as sess:
        sess.run([tf.global_variables_initializer(),
                  tf.local_variables_initializer()])
        estimate, exact = sess.run([estimator.estimate, backprop], feeds)
    self.assertNotEqual(exact, 0.)
    self.assertAllClose(estimate, exact, rtol=2e-2)

  def test_it_meta_trains_through_the_loop(self):
    logdir = os.path.join(self.get_temp_dir(), "toy")
    values = dict(num_meta_iterations=3, meta_learning_rate=1e-3,
                  fix_unroll=True, fix_unroll_length=4, fix_num_steps=4,
                  fix_num_steps_eval=4, evaluation_epochs=1,
                  gradient_estimator="central_difference")
    metaopt.train_optimizer(
        logdir, _OPTIMIZER, [(_SPEC, None, None)],
        schedule=configs.from_flags(meta_config.Schedule, values),
        meta_optimizer=configs.from_flags(meta_config.MetaOptimizer, values),
        evaluation=configs.from_flags(meta_config.Evaluation, values),
        seed=0, out=io.StringIO())
    last = os.path.join(logdir, "model.ckpt-3")
    self.assertEqual(tf.train.load_variable(last, "global_step"), 3)
    start = tf.train.load_variable(os.path.join(logdir, "model.ckpt-initial"),
                                   "LOL/global_learning_rate")
    self.assertNotEqual(
        tf.train.load_variable(last, "LOL/global_learning_rate"), start)


class RegistryTest(tf.test.TestCase):

  def test_names_are_checked(self):
    self.assertIn("truncated_backprop", estimators.names())
    with self.assertRaisesRegex(ValueError, "unknown gradient estimator "
                                "'nope'; expected one of truncated_backprop"):
      estimators.make("nope", None)
    with self.assertRaisesRegex(ValueError, "already registered"):
      estimators.register("truncated_backprop", CentralDifference)


if __name__ == "__main__":
  tf.test.main()
