"""Tests of batches of tasks per meta-update and of horizon sampling.

K tasks in one graph against K one-task graphs (objectives, truncated
backprop's meta-gradient, the ES estimate), PES's particles restarting task
by task, the log-uniform horizons and their stagger against numpy, and the
loop's task trajectories under horizon sampling, read back from the feeds
an estimator is given.
"""

from tests import test_util

import contextlib
import io
import os

import numpy as np
import tensorflow.compat.v1 as tf

import metaopt
from meta_training import config as meta_config
from meta_training import data as data_lib
from meta_training import graph as graph_lib
from meta_training import schedule as schedule_lib
from meta_training.estimators import base
from meta_training.estimators import truncated_backprop
from optimizer import global_learning_rate
from problems import problem_generator as pg
from problems import problem_spec
from run_control import configs

_QUADRATIC = problem_spec.Spec(pg.Quadratic, (4,), {"random_seed": 0})
_GLR = problem_spec.Spec(global_learning_rate.GlobalLearningRate, (0.01,), {})
_STEPS = 5


def _starts(num_tasks, seed=0):
  rng = np.random.RandomState(seed)
  return [[rng.standard_normal((4, 1)).astype(np.float32)]
          for _ in range(num_tasks)]


def _feed_for(x0s, truncations=None):
  """feed_for of tasks starting at x0s[k], task k at partial unroll
  truncations[k] (default 0: a first unroll) of a 3-unroll trajectory."""
  truncations = truncations or [0] * len(x0s)
  return lambda out, task: data_lib.feed(
      out, x0s[task], [_STEPS] * 3, truncations[task], data_lib.NO_DATA,
      truncations[task] == 0)


def _session():
  sess = tf.Session()
  sess.run([tf.global_variables_initializer(),
            tf.local_variables_initializer()])
  return sess


def _settings(name, num_tasks, **overrides):
  return meta_config.MetaOptimizer(gradient_estimator=name,
                                   num_tasks=num_tasks, **overrides)


def _one_task_values(name, x0, fetch, **overrides):
  """fetch(graph, sess, feed_for) in a fresh one-task graph from x0."""
  with tf.Graph().as_default():
    graph = graph_lib.build_meta_graph(_QUADRATIC, _GLR,
                                       _settings(name, 1, **overrides))
    with _session() as sess:
      return fetch(graph, sess, _feed_for([x0]))


class TasksInOneGraphTest(tf.test.TestCase):

  def test_tasks_agree_with_separate_runs_and_the_gradient_is_their_mean(self):
    x0s = _starts(3)

    def fetch(graph, sess, feed_for):
      outs = graph.task_outputs
      [(_, raw, _)] = graph.estimator.gradients
      return sess.run([[out.problem_objectives for out in outs],
                       graph.estimator.meta_objective, raw],
                      base.task_feed(feed_for, outs))

    with tf.Graph().as_default():
      graph = graph_lib.build_meta_graph(
          _QUADRATIC, _GLR, _settings("truncated_backprop", 3))
      self.assertLen(graph.task_outputs, 3)
      self.assertIs(graph.task_outputs[0], graph.train_output)
      with _session() as sess:
        objectives, mean, gradient = fetch(graph, sess, _feed_for(x0s))
    separate = [_one_task_values("truncated_backprop", x0, fetch)
                for x0 in x0s]
    for task, (alone, meta_objective, alone_gradient) in enumerate(separate):
      self.assertAllClose(objectives[task], alone[0], rtol=1e-6)
    self.assertFalse(np.allclose(separate[0][0], separate[1][0][0]))
    self.assertAllClose(mean, np.mean([s[1] for s in separate]), rtol=1e-6)
    self.assertAllClose(gradient, np.mean([s[2] for s in separate]),
                        rtol=1e-5)
    self.assertNotAllClose(separate[0][2], separate[1][2])

  def test_the_es_estimate_is_the_mean_of_the_tasks_estimates(self):
    x0s = _starts(2, seed=1)
    epsilons = [[np.float32(e)] for e in (0.8, -1.1, 0.3)]
    settings = dict(es_sigma=0.01, es_pairs=3)

    def fetch(graph, sess, feed_for):
      starts = graph.estimator.start(sess, feed_for)
      return graph.estimator.estimate(sess, feed_for, starts,
                                      epsilons=epsilons)

    with tf.Graph().as_default():
      graph = graph_lib.build_meta_graph(_QUADRATIC, _GLR,
                                         _settings("es", 2, **settings))
      self.assertLen(graph.estimator.pairs, 2)
      with _session() as sess:
        [estimate], objectives = fetch(graph, sess, _feed_for(x0s))
    separate = [_one_task_values("es", x0, fetch, **settings) for x0 in x0s]
    self.assertAllClose(estimate, np.mean([s[0][0] for s in separate]),
                        rtol=1e-5)
    # Row i K + k: pair i on task k.
    for task, (_, alone) in enumerate(separate):
      self.assertAllClose(objectives[task::2], alone, rtol=1e-6)
    self.assertNotAllClose(separate[0][0][0], separate[1][0][0])

  def test_pes_restarts_each_task_on_its_own_trajectory_start(self):
    x0s = _starts(2, seed=2)
    first, second = ([[np.float32(e)] for e in row]
                     for row in ([0.5, -0.7], [1.2, 0.4]))
    with tf.Graph().as_default():
      graph = graph_lib.build_meta_graph(
          _QUADRATIC, _GLR, _settings("pes", 2, es_pairs=2, es_sigma=0.01))
      estimator = graph.estimator
      with _session() as sess:
        feed_for = _feed_for(x0s)
        estimator.estimate(sess, feed_for, estimator.start(sess, feed_for),
                           epsilons=first)
        kept = estimator.particles[0]
        # Task 0 goes on to its second partial unroll; task 1 starts again.
        feed_for = _feed_for(x0s, [1, 0])
        starts = estimator.start(sess, feed_for)
        estimator.estimate(sess, feed_for, starts, epsilons=second)
    sums = [np.ravel(xi) for xi in estimator.accumulated[0]]
    self.assertAllClose(sums, [[0.5 + 1.2], [-0.7 + 0.4]], rtol=1e-6)
    self.assertAllEqual([np.ravel(xi) for xi in estimator.accumulated[1]],
                        np.float64(second))
    # Task 0's particles went on from where they were, not from its start.
    self.assertNotAllClose(kept[0][0][1], starts[0][1])


class HorizonScheduleTest(tf.test.TestCase):

  def _schedule(self, unroll_length=2, low=10, high=1000, stagger=True):
    return schedule_lib.HorizonSchedule(unroll_length, 8, low, high, stagger,
                                        num_eval_unrolls=3, save_period=1,
                                        num_meta_iterations=5,
                                        saves_last=True)

  def test_horizons_are_log_uniform_whole_unrolls(self):
    schedule = self._schedule(unroll_length=1)
    self.assertTrue(schedule.samples_horizons)
    self.assertEqual(schedule.unroll_lengths(), [1] * 8)
    rng = np.random.RandomState(4)
    draws = np.array([len(schedule.trajectory_lengths(rng, 0, 1, False))
                      for _ in range(20000)])
    self.assertGreaterEqual(draws.min(), 10)
    self.assertLessEqual(draws.max(), 1000)
    # P(round(H) <= 100) = P(H < 100.5) = ln(10.05) / ln(100) for H
    # log-uniform in [10, 1000]; 4 standard errors.
    expected = np.log(100.5 / 10.) / np.log(100.)
    self.assertNear(np.mean(draws <= 100), expected,
                    4. * np.sqrt(0.25 / len(draws)))
    # The same draws as numpy's, in whole unrolls of 20 steps.
    schedule = self._schedule(unroll_length=20, low=30, high=300)
    rng, ground = np.random.RandomState(5), np.random.RandomState(5)
    for _ in range(50):
      horizon = np.exp(ground.uniform(np.log(30.), np.log(300.)))
      self.assertEqual(schedule.trajectory_lengths(rng, 0, 1, False),
                       [20] * max(1, int(np.round(horizon / 20.))))

  def test_first_trajectories_are_staggered(self):
    schedule = self._schedule(unroll_length=5, low=50, high=50)
    rng = np.random.RandomState(0)
    firsts = [len(schedule.trajectory_lengths(rng, k, 4, True))
              for k in range(4)]
    self.assertEqual(firsts, [10, 8, 5, 3])  # 10 - floor(10 k / 4)
    self.assertLen(schedule.trajectory_lengths(rng, 3, 4, False), 10)
    unstaggered = self._schedule(unroll_length=5, low=50, high=50,
                                 stagger=False)
    self.assertEqual(
        [len(unstaggered.trajectory_lengths(rng, k, 4, True))
         for k in range(4)], [10] * 4)
    with self.assertRaisesRegex(ValueError, "min_horizon <= max_horizon"):
      self._schedule(low=20, high=10)


@contextlib.contextmanager
def _recording():
  """Records what truncated backprop's `run` is given and computes: per run,
  per task, the first-unroll and reset flags, the initial parameters and the
  teacher steps fed, and on imitation runs the tasks' imitation losses and
  their mean (the loss minimised). Yields the list of records."""
  records = []
  run = truncated_backprop.TruncatedBackprop.run

  def recording(estimator, sess, feed_for, imitating, carry, fetches):
    tasks = []
    for task, out in enumerate(estimator.tasks):
      feed = feed_for(out, task)
      tasks.append((bool(feed[out.first_unroll]), bool(feed[out.reset_state]),
                    feed[out.initial_params[0]].tobytes(),
                    feed.get(out.teacher_steps[0])))
    losses = None
    if imitating:
      losses = sess.run([[out.imitation_loss for out in estimator.tasks],
                         estimator.imitation_loss],
                        base.task_feed(feed_for, estimator.tasks))
    records.append((tasks, carry, losses))
    return run(estimator, sess, feed_for, imitating, carry, fetches)

  truncated_backprop.TruncatedBackprop.run = recording
  try:
    yield records
  finally:
    truncated_backprop.TruncatedBackprop.run = run


def _train(logdir, values):
  out = io.StringIO()
  metaopt.train_optimizer(
      logdir, _GLR, [(_QUADRATIC, None, None)],
      schedule=configs.from_flags(meta_config.Schedule, values),
      meta_optimizer=configs.from_flags(meta_config.MetaOptimizer, values),
      evaluation=configs.from_flags(meta_config.Evaluation, values),
      imitation=configs.from_flags(meta_config.Imitation, values),
      seed=0, out=out)
  return out.getvalue()


class TaskLoopTest(tf.test.TestCase):

  def test_tasks_run_staggered_trajectories_across_meta_iterations(self):
    # Horizons of exactly 8 steps: 4 unrolls of 2; a meta-iteration is 2
    # unrolls of each of the 3 tasks.
    values = dict(num_meta_iterations=4, meta_learning_rate=1e-3,
                  fix_unroll_length=2, fix_num_steps=4, fix_num_steps_eval=4,
                  evaluation_epochs=1, horizon_sampling=True, min_horizon=8,
                  max_horizon=8, task_batch_size=3)
    logdir = os.path.join(self.get_temp_dir(), "horizons")
    with _recording() as runs:
      output = _train(logdir, values)
    self.assertLen(runs, 8)
    self.assertTrue(all(carry for _, carry, _ in runs))
    # First trajectories of 4, 3 and 2 unrolls (4 - floor(4 k / 3)), then 4.
    starts = {0: [0, 4], 1: [0, 3, 7], 2: [0, 2, 6]}
    for task, expected in starts.items():
      flags = [tasks[task][0] for tasks, _, _ in runs]
      self.assertEqual([i for i, f in enumerate(flags) if f], expected,
                       "task %d" % task)
      # The state resets on the draw's first trajectory only
      # (--reset_rnn_params).
      self.assertEqual([i for i, (tasks, _, _) in enumerate(runs)
                        if tasks[task][1]], [0])
      x0s = [tasks[task][2] for tasks, _, _ in runs]
      for i in range(1, 8):
        self.assertEqual(x0s[i] == x0s[i - 1], i not in expected)
    self.assertEqual(
        tf.train.load_variable(os.path.join(logdir, "model.ckpt-4"),
                               "global_step"), 8)
    self.assertIn("meta-iteration 4/4", output)

  def test_imitation_gives_each_task_its_teacher_and_minimises_the_mean(self):
    values = dict(num_meta_iterations=1, meta_learning_rate=1e-3,
                  fix_unroll=True, fix_unroll_length=3, fix_num_steps=6,
                  fix_num_steps_eval=3, evaluation_epochs=1,
                  task_batch_size=2, if_mt=True, mt_ratio=1.)
    with _recording() as runs:
      _train(os.path.join(self.get_temp_dir(), "imitation"), values)
    self.assertLen(runs, 2)
    for tasks, _, (per_task, mean) in runs:
      (_, _, x0_a, steps_a), (_, _, x0_b, steps_b) = tasks
      self.assertNotEqual(x0_a, x0_b)
      self.assertEqual(steps_a.shape, (3, 4, 1))
      self.assertNotAllClose(steps_a, steps_b)
      self.assertNotAllClose(per_task[0], per_task[1])
      self.assertAllClose(mean, np.mean(per_task), rtol=1e-6)


if __name__ == "__main__":
  tf.test.main()
