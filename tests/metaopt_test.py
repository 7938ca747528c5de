"""Tests of metaopt and meta_training: schedules, data, loop, checkpoints."""

from tests import test_util

import io
import os
import random
from unittest import mock

import numpy as np
import tensorflow.compat.v1 as tf

import metaopt
from meta_training import config as meta_config
from meta_training import data as data_lib
from meta_training import evaluation as meta_evaluation
from meta_training import graph as graph_lib
from meta_training import schedule as schedule_lib
from meta_training import session as session_lib
from meta_training import teacher
from optimizer import global_learning_rate
from optimizer import hierarchical_rnn
from problems import datasets
from problems import problem_generator as pg
from problems import problem_spec
from run_control import configs


class HelpersTest(tf.test.TestCase):

  def test_sample_numiter_stays_between_min_and_three_times_min(self):
    rng = np.random.RandomState(0)
    draws = [schedule_lib.sample_numiter(40, 10, rng) for _ in range(500)]
    self.assertEqual(min(draws), 10)
    self.assertEqual(max(draws), 30)
    rng = np.random.RandomState(1)
    expected = int(np.clip(np.round(rng.exponential(5.)) + 3, 0, 9))
    self.assertEqual(
        schedule_lib.sample_numiter(5, 3, np.random.RandomState(1)), expected)

  def test_sigmoid_weights_rise_and_sum_to_one(self):
    weights = schedule_lib.sigmoid_weights(8, slope=0.5, offset=3)
    raw = 1. / (1. + np.exp(-0.5 * (np.arange(8) - 3)))
    self.assertAllClose(weights, raw / raw.sum())

  def test_regularizer_switch_follows_the_originals_table(self):
    switch = lambda time: [schedule_lib.regularizer_switch(u, 5, time, 0.5)
                           for u in range(5)]
    self.assertEqual(switch("posterior"), [False] * 4 + [True])
    self.assertEqual(switch("prior"), [True] * 3 + [False] * 2)
    self.assertEqual(switch("none"), [False] * 5)
    self.assertEqual(switch("always"), [True] * 5)

  def test_fixed_schedule_has_whole_unrolls(self):
    fixed = lambda length: schedule_lib.FixedSchedule(length, 100, 5, 1, 3,
                                                      True)
    self.assertEqual(fixed(20).unroll_lengths(), [20] * 5)
    self.assertEqual(fixed(30).unroll_lengths(), [30] * 3)
    with mock.patch.object(schedule_lib, "sample_numiter",
                           side_effect=[2, 7, 7]):
      self.assertEqual(schedule_lib.RandomSchedule(
          meta_config.Schedule(), 5, 1, 3, True).unroll_lengths(), [7, 7])

  def test_problems_are_drawn_at_random_or_round_robin(self):
    entries = ["a", "b", "c"]
    drawn = data_lib.draw_problems(entries, 10, True, random.Random(0))
    self.assertLen(drawn, 10)
    self.assertTrue(set(drawn) <= set(entries))
    cycled = data_lib.draw_problems(entries, 7, False, random.Random(0))
    self.assertEqual(sorted(cycled[:3]), entries)
    self.assertEqual(cycled[3:6], cycled[:3])

  def test_unroll_data_subsets_and_batches(self):
    data = datasets.Dataset(np.arange(20, dtype=np.float32).reshape(10, 2),
                            np.arange(10, dtype=np.int32).reshape(10, 1))
    parts = data_lib.unroll_data(data, 3, [2, 2], 6, False,
                                np.random.RandomState(0))
    self.assertLen(parts, 2)
    for part in parts:
      self.assertEqual(part.mini_data.shape, (6, 2))
      self.assertEqual(part.batches.shape, (2, 3))
      self.assertTrue(np.all(part.batches < 6))
      self.assertAllEqual(part.mini_data[:, 0] / 2, part.mini_labels)
    frozen = data_lib.unroll_data(data, 3, [2], 6, True,
                                 np.random.RandomState(0))
    self.assertAllEqual(frozen[0].mini_labels, np.arange(6))
    empty = data_lib.unroll_data(None, None, [2, 3], 6, False)
    self.assertEqual(empty[1], data_lib.UnrollData(None, None, None,
                                                  [None] * 3))


_META_OPTIMIZER = meta_config.MetaOptimizer(
    learning_rate=1e-3, rms_decay=0.9, rms_epsilon=1e-20, gradient_clip=5.,
    l2_reg=0.)


def _train(logdir, seed=0, curriculum_steps=None, **flag_values):
  """A short run on a quadratic; flag_values as metarun.py's flags."""
  spec = problem_spec.Spec(pg.Quadratic, (4,), {"random_seed": 0})
  optimizer = problem_spec.Spec(global_learning_rate.GlobalLearningRate,
                                (0.01,), {})
  values = dict(num_meta_iterations=3, meta_learning_rate=1e-3,
                fix_unroll=True, fix_unroll_length=2, fix_num_steps=4,
                fix_num_steps_eval=4, evaluation_epochs=1)
  values.update(flag_values)
  curriculum = {}
  if curriculum_steps:
    curriculum = dict(curriculum=True, curriculum_steps=curriculum_steps)
  out = io.StringIO()
  metaopt.train_optimizer(
      logdir, optimizer, [(spec, None, None)],
      schedule=configs.from_flags(meta_config.Schedule, values, **curriculum),
      meta_optimizer=configs.from_flags(meta_config.MetaOptimizer, values),
      evaluation=configs.from_flags(meta_config.Evaluation, values),
      imitation=configs.from_flags(meta_config.Imitation, values),
      seed=seed, out=out)
  return out.getvalue()


def _stored(path, name):
  return tf.train.load_variable(path, name)


class TrainOptimizerTest(tf.test.TestCase):

  def test_meta_iterations_change_the_meta_parameters_and_save(self):
    logdir = os.path.join(self.get_temp_dir(), "run")
    log = _train(logdir)
    for k in range(4):
      self.assertTrue(os.path.exists(os.path.join(
          logdir, "model.ckpt-%d.index" % k)), k)
    first = _stored(os.path.join(logdir, "model.ckpt-1"),
                    "LOL/global_learning_rate")
    last = _stored(os.path.join(logdir, "model.ckpt-3"),
                   "LOL/global_learning_rate")
    self.assertNotAllClose(first, last)
    self.assertNotAllClose(first, 0.01)
    # Two unrolls per meta-iteration, one meta-update each.
    self.assertEqual(_stored(os.path.join(logdir, "model.ckpt-3"),
                             "global_step"), 6)
    self.assertIn("meta-iteration 3/3", log)
    self.assertIn("ETA", log)

  def test_best_checkpoint_is_rewritten_only_on_improvement(self):
    logdir = os.path.join(self.get_temp_dir(), "best")
    costs = iter([3.0, 1.0, 2.0])
    with mock.patch.object(meta_evaluation, "evaluate",
                           side_effect=lambda *a, **k: next(costs)):
      _train(logdir)
    best = os.path.join(logdir, "model.ckpt-0")
    self.assertEqual(_stored(best, "meta_training/meta_iterations_done"), 2)
    self.assertEqual(_stored(best, "meta_training/best_evaluation"), 1.0)
    self.assertAllClose(_stored(best, "LOL/global_learning_rate"),
                        _stored(os.path.join(logdir, "model.ckpt-2"),
                                "LOL/global_learning_rate"))

  def test_a_killed_run_resumes_from_its_checkpoint(self):
    logdir = os.path.join(self.get_temp_dir(), "resume")
    calls = []

    def dies_on_second_evaluation(*unused_args, **unused_kwargs):
      calls.append(1)
      if len(calls) == 2:
        raise KeyboardInterrupt
      return 1.0

    with mock.patch.object(meta_evaluation, "evaluate",
                           side_effect=dies_on_second_evaluation):
      with self.assertRaises(KeyboardInterrupt):
        _train(logdir)
    saved_rate = _stored(os.path.join(logdir, "model.ckpt-1"),
                         "LOL/global_learning_rate")
    self.assertFalse(os.path.exists(os.path.join(logdir,
                                                 "model.ckpt-2.index")))
    log = _train(logdir, seed=1)
    self.assertIn("resuming from %s, global step 2" %
                  os.path.join(logdir, "model.ckpt-1"), log)
    self.assertNotIn("meta-iteration 1/3", log)
    self.assertIn("meta-iteration 3/3", log)
    # Two more meta-iterations of two updates each, continuing the count.
    self.assertEqual(_stored(os.path.join(logdir, "model.ckpt-3"),
                             "global_step"), 6)
    # The restart trained on from the saved rate, not from the initial one:
    # its first checkpoint is one meta-iteration away from the saved rate.
    resumed = _stored(os.path.join(logdir, "model.ckpt-2"),
                      "LOL/global_learning_rate")
    self.assertNotAllClose(saved_rate, 0.01)
    self.assertLess(abs(resumed - saved_rate), abs(resumed - 0.01))

  def test_curriculum_saves_stage_checkpoints_restores_and_stops(self):
    logdir = os.path.join(self.get_temp_dir(), "curriculum")
    # Stage 0: 5, 4 improve, 4.5 ends it (restore model.ckpt-0, baseline 6
    # at stage 1's horizon); stage 1: three evaluations without improvement.
    costs = iter([5.0, 4.0, 4.5, 6.0, 7.0, 7.0, 7.0])
    seen = []

    def scripted(sess, graph, lengths, *unused_args, **unused_kwargs):
      seen.append((len(lengths),
                   sess.run(graph.optimizer.learning_rate)))
      return next(costs)

    with mock.patch.object(meta_evaluation, "evaluate", side_effect=scripted):
      log = _train(logdir, num_meta_iterations=20,
                   curriculum_steps=(4, 8, 12))
    # Evaluations at the next stage's horizon: 4 unrolls, then 6.
    self.assertEqual([n for n, _ in seen], [4, 4, 4, 6, 6, 6, 6])
    best_rate = _stored(os.path.join(logdir, "model.ckpt-0"),
                        "LOL/global_learning_rate")
    # The baseline evaluation ran right after restoring stage 0's best.
    self.assertAllClose(seen[3][1], best_rate)
    self.assertNotAllClose(seen[2][1], best_rate)
    self.assertFalse(os.path.exists(os.path.join(logdir,
                                                 "model.ckpt-1.index")))
    self.assertIn("curriculum 0 -> 1", log)
    self.assertIn("no improve during curriculum 1 --> stop", log)
    self.assertIn("meta-iteration 6/20  [curriculum stage 1: 8 steps]", log)
    self.assertNotIn("meta-iteration 7/20", log)

  def test_imitation_updates_follow_the_imitation_loss_only(self):
    logdir = os.path.join(self.get_temp_dir(), "imitation")
    captured = []
    real_targets = teacher.Teacher.targets

    def capture(self_, x0, batches, k=1):
      result = real_targets(self_, x0, batches, k)
      captured.append((x0, result))
      return result

    with mock.patch.object(teacher.Teacher, "targets", capture):
      _train(logdir, num_meta_iterations=1, fix_num_steps=3,
             fix_unroll_length=3, evaluation_period=1000, if_mt=True,
             mt_ratio=1.0, meta_learning_rate=1e-2)
    self.assertLen(captured, 1)
    (x0,), ((targets,),) = captured[0][0], captured[0][1]
    problem = pg.Quadratic(4, random_seed=0)
    w, y = problem.w.astype(np.float64), problem.y.astype(np.float64)
    # GLR's steps lr * g(x_t) along the teacher's trajectory; the imitation
    # loss is mean_t 1/2 ||lr g_t - D_t||^2 / 4, so its lr-gradient is:
    lr0, x, grad = 0.01, x0.astype(np.float64), 0.
    for t in range(3):
      g = w.T.dot(w.dot(x) - y)
      grad += np.sum((lr0 * g - targets[t]) * g) / 4 / 3
      x = x - targets[t]
    # One TF1 RMSProp step (mean square starts at 1, decay 0.9).
    expected = lr0 - 1e-2 * grad / np.sqrt(0.9 + 0.1 * grad**2 + 1e-20)
    stored = _stored(os.path.join(logdir, "model.ckpt-1"),
                     "LOL/global_learning_rate")
    self.assertAllClose(stored, expected, rtol=1e-4)
    self.assertEqual(_stored(os.path.join(logdir, "model.ckpt-1"),
                             "global_step"), 1)

  def test_mt_ratio_zero_never_and_one_always_imitates(self):
    for ratio, expected_calls in ((0.0, 0), (1.0, 3)):
      calls = []
      real_targets = teacher.Teacher.targets

      def counting(self_, *args, **kwargs):
        calls.append(1)
        return real_targets(self_, *args, **kwargs)

      with mock.patch.object(teacher.Teacher, "targets", counting):
        _train(os.path.join(self.get_temp_dir(), "ratio%g" % ratio),
               if_mt=True, mt_ratio=ratio, evaluation_period=1000)
      self.assertLen(calls, expected_calls, ratio)

  def test_evaluation_does_not_change_training_state(self):
    logdir = os.path.join(self.get_temp_dir(), "eval")
    with tf.Graph().as_default():
      spec = problem_spec.Spec(pg.Quadratic, (4,), {"random_seed": 0})
      optimizer = problem_spec.Spec(global_learning_rate.GlobalLearningRate,
                                    (0.01,), {})
      graph = graph_lib.build_meta_graph(spec, optimizer, _META_OPTIMIZER,
                                         False, evaluation_unroll=True)
      start = session_lib.restore_or_initialize_fn(graph, logdir)
      with tf.Session() as sess:
        start(sess)
        sess.run([v.assign(tf.ones_like(v)) for v in
                  graph.train_output.carried_variables])
        before = sess.run(graph.train_output.carried_variables +
                          graph.meta_vars)
        last = data_lib.UnrollData(None, None, None, None)
        cost = meta_evaluation.evaluate(
            sess, graph, [2, 2], last, 3, True, 2, None, 10,
            np.random.RandomState(0), log=lambda _: None)
        after = sess.run(graph.train_output.carried_variables +
                         graph.meta_vars)
    self.assertTrue(np.isfinite(cost))
    for a, b in zip(before, after):
      self.assertAllEqual(a, b)


class PropagateStateTest(tf.test.TestCase):

  def test_the_state_is_carried_on_only_when_asked(self):
    spec = problem_spec.Spec(pg.Quadratic, (4,), {"random_seed": 0})
    optimizer = problem_spec.Spec(global_learning_rate.GlobalLearningRate,
                                  (0.01,), {})
    with tf.Graph().as_default():
      graph = graph_lib.build_meta_graph(spec, optimizer, _META_OPTIMIZER,
                                         False)
      out = graph.train_output
      with tf.Session() as sess:
        sess.run([tf.global_variables_initializer(),
                  tf.local_variables_initializer()])
        x0 = [np.ones((4, 1), np.float32)]
        feed = data_lib.feed(out, x0, [3], 0, data_lib.NO_DATA, True)
        before = sess.run(out.carried_variables)
        feed[graph.estimator.carry_state] = False
        rate = sess.run(graph.optimizer.learning_rate)
        sess.run(graph.estimator.update_and_carry, feed)
        kept = sess.run(out.carried_variables)
        self.assertNotEqual(sess.run(graph.optimizer.learning_rate), rate)
        feed[graph.estimator.carry_state] = True
        outputs, _ = sess.run([out.carried_values,
                               graph.estimator.update_and_carry], feed)
        carried = sess.run(out.carried_variables)
    for a, b in zip(before, kept):
      self.assertAllEqual(a, b)
    for a, b in zip(outputs, carried):
      self.assertAllEqual(a, b)
    self.assertNotAllClose(carried[1], before[1])


class HistogramSummaryTest(tf.test.TestCase):

  def test_state_histograms_show_the_per_tensor_state(self):
    # HierarchicalRNN's loop carries a packed state; the summaries must see
    # every per-tensor entry with the values the unroll ends with.
    spec = problem_spec.Spec(pg.Quadratic, (4,), {"random_seed": 0})
    optimizer = problem_spec.Spec(hierarchical_rnn.HierarchicalRNN,
                                  ([3, 4, 5],), {"random_seed": 0})
    with tf.Graph().as_default():
      graph = graph_lib.build_meta_graph(spec, optimizer, _META_OPTIMIZER,
                                         True)
      out = graph.train_output
      keys = out.state_keys[0]
      with tf.Session() as sess:
        sess.run([tf.global_variables_initializer(),
                  tf.local_variables_initializer()])
        feed = data_lib.feed(out, [np.ones((4, 1), np.float32)], [3], 0,
                             data_lib.UnrollData(None, None, None, None),
                             True)
        summary, state = sess.run([graph.summary_op, out.output_state[0]],
                                  feed)
    histograms = {}
    for value in tf.Summary.FromString(summary).value:
      if value.tag.startswith("State/"):
        histograms[value.tag[len("State/"):]] = value.histo
    self.assertEqual(sorted(histograms), keys)
    for key, value in zip(keys, state):
      self.assertEqual(histograms[key].num, value.size, key)
      self.assertAllClose([histograms[key].min, histograms[key].max],
                          [value.min(), value.max()], msg=key)


class EvaluationShortcutTest(tf.test.TestCase):

  def test_evaluation_scores_the_same_as_with_every_step_recorded(self):
    # HierarchicalRNN carries its state between unrolls; an MLP on data.
    spec = problem_spec.Spec(pg.FullyConnected, (6, 3),
                             {"hidden_sizes": (4,), "random_seed": 0})
    optimizer = problem_spec.Spec(hierarchical_rnn.HierarchicalRNN,
                                  ([5, 5],), {"random_seed": 0})
    rng = np.random.RandomState(0)
    last = data_lib.UnrollData(rng.randn(50, 6).astype(np.float32),
                              rng.randint(0, 3, 50).astype(np.int32), None,
                              None)
    with tf.Graph().as_default():
      graph = graph_lib.build_meta_graph(spec, optimizer, _META_OPTIMIZER,
                                         False, evaluation_unroll=True)
      init = [tf.global_variables_initializer(),
              tf.local_variables_initializer()]
      with tf.Session() as sess:
        sess.run(init)
        costs = [meta_evaluation.evaluate(
            sess, graph, [4, 4, 4], last, 1, True, 3, 8, 50,
            np.random.RandomState(1), log=lambda _: None,
            record_every_step=every) for every in (True, False)]
    self.assertTrue(np.isfinite(costs[0]))
    self.assertAllClose(costs[1], costs[0], rtol=1e-6)


class SharedStartTest(tf.test.TestCase):
  """How a cluster's chief and other workers start their sessions.

  A local server stands in for the parameter servers: variables live in its
  resource manager across sessions, as on a parameter server.
  """

  def _graph(self):
    graph_obj = tf.Graph()
    with graph_obj.as_default():
      graph = graph_lib.build_meta_graph(
          problem_spec.Spec(pg.Quadratic, (4,), {"random_seed": 0}),
          problem_spec.Spec(global_learning_rate.GlobalLearningRate, (0.01,),
                            {}),
          meta_config.MetaOptimizer(1e-3, 0.9, 1e-10, 1e4, 0.))
    return graph_obj, graph

  def _rate(self, sess, graph):
    return sess.run(graph.optimizer.learning_rate)

  def _shared_start(self, logdir, log):
    """A new meta-graph and its chief's start function (shared=True)."""
    graph_obj, graph = self._graph()
    with graph_obj.as_default():
      start = session_lib.restore_or_initialize_fn(graph, logdir, log.append,
                                               shared=True)
    return graph_obj, graph, start

  def test_the_chief_keeps_live_meta_parameters_over_a_checkpoint(self):
    server = tf.train.Server.create_local_server()
    logdir = self.get_temp_dir()
    log = []
    graph_obj, graph, start = self._shared_start(logdir, log)
    with tf.Session(server.target, graph=graph_obj) as sess:
      self.assertIsNone(start(sess))
      self.assertAllClose(self._rate(sess, graph), 0.01)
      graph.saver.save(sess, os.path.join(logdir, "model.ckpt"),
                       global_step=1)
      graph.optimizer.learning_rate.load(0.5, sess)
    # A new graph (the next problem draw, or a restarted chief) on the same
    # server carries on with the live value, not the checkpoint's.
    graph_obj, graph, start = self._shared_start(logdir, log)
    with tf.Session(server.target, graph=graph_obj) as sess:
      self.assertIsNone(start(sess))
      self.assertAllClose(self._rate(sess, graph), 0.5)
    self.assertIn("using the meta-parameters on the parameter servers, "
                  "global step 0", log)
    # A fresh server restores the checkpoint.
    graph_obj, graph, start = self._shared_start(logdir, log)
    fresh = tf.train.Server.create_local_server()
    with tf.Session(fresh.target, graph=graph_obj) as sess:
      self.assertEqual(start(sess), os.path.join(logdir, "model.ckpt-1"))
      self.assertAllClose(self._rate(sess, graph), 0.01)

  def test_other_workers_wait_for_the_chief(self):
    server = tf.train.Server.create_local_server()
    graph_obj, _ = self._graph()
    polls = []
    with graph_obj.as_default():
      chief_initializes = tf.group(
          *[v.initializer for v in tf.global_variables()])

      class FakeWorker(object):
        """Records the first poll, then lets the "chief" initialise."""

        def wait_for_initialization(self, sess, uninitialized):
          polls.append(len(sess.run(uninitialized)))
          sess.run(chief_initializes)

      wait = session_lib.wait_for_chief_fn(FakeWorker())
      local_initialized = [tf.is_variable_initialized(v)
                           for v in tf.local_variables()]
    with tf.Session(server.target, graph=graph_obj) as sess:
      wait(sess)
      self.assertEqual(polls, [len(graph_obj.get_collection(
          tf.GraphKeys.GLOBAL_VARIABLES))])
      # The worker's own unroll state is initialised after the wait.
      self.assertNotEmpty(local_initialized)
      self.assertTrue(all(sess.run(local_initialized)))


if __name__ == "__main__":
  tf.test.main()
