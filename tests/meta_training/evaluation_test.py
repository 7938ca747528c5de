"""Tests of meta_training.evaluation: trajectories of the forward-only unroll."""

from tests import test_util

import numpy as np
import tensorflow.compat.v1 as tf

from meta_training import config as meta_config
from meta_training import data as data_lib
from meta_training import evaluation
from meta_training import graph as graph_lib
from meta_training import session as session_lib
from optimizer import hierarchical_rnn
from problems import problem_generator as pg
from problems import problem_spec

_META_OPTIMIZER = meta_config.MetaOptimizer(1e-3, 0.9, 1e-10, 1e4, 0.)


def unroll_by_unroll(sess, graph, lengths, last_data, k, reset_rnn_params,
                     epochs, batch_size, mini_batch_size, rng):
  """The reference: each trajectory run unroll by unroll through the
  training graph (carrying the state through its loop variables, restored
  afterwards), as evaluation ran before the forward-only unroll."""
  out = graph.train_output
  saved = session_lib.snapshot(sess, graph)
  costs = []
  for _ in range(epochs):
    x0 = data_lib.initial_parameters(graph.problem, rng)
    data = data_lib.evaluation_data(last_data, lengths, batch_size,
                                    mini_batch_size, rng)
    for unroll in range(len(lengths)):
      reset = unroll == 0 and (k == 0 if reset_rnn_params else True)
      feed = data_lib.feed(out, x0, lengths, unroll, data[unroll], reset)
      objectives, _ = sess.run([out.problem_objectives, graph.propagate_op],
                               feed)
    costs.append(objectives[-1])
  session_lib.restore_snapshot(sess, graph, saved)
  return costs


class EvaluationTest(tf.test.TestCase):

  def _graph(self, forward=True, init_lr_range=(1e-3, 1e-1), xla_apply=True):
    spec = problem_spec.Spec(pg.FullyConnected, (6, 3),
                             {"hidden_sizes": (4,), "random_seed": 0})
    optimizer = problem_spec.Spec(
        hierarchical_rnn.HierarchicalRNN, ([5, 5, 5],),
        {"random_seed": 0, "init_lr_range": init_lr_range,
         "xla_apply": xla_apply})
    graph = graph_lib.build_meta_graph(spec, optimizer, _META_OPTIMIZER,
                                       False, evaluation_unroll=forward)
    return graph

  def _session(self):
    """A session of the default graph, its variables initialised."""
    sess = tf.Session()
    sess.run([tf.global_variables_initializer(),
              tf.local_variables_initializer()])
    return sess

  def _last_data(self):
    rng = np.random.RandomState(0)
    return data_lib.UnrollData(rng.randn(50, 6).astype(np.float32),
                               rng.randint(0, 3, 50).astype(np.int32), None,
                               None)

  def _trained_state(self, sess, graph, last):
    """Runs two training unrolls so that the carried state is not fresh."""
    rng = np.random.RandomState(5)
    x0 = data_lib.initial_parameters(graph.problem, rng)
    data = data_lib.evaluation_data(last, [3, 3], 8, 50, rng)
    for unroll in range(2):
      feed = data_lib.feed(graph.train_output, x0, [3, 3], unroll,
                           data[unroll], unroll == 0)
      sess.run(graph.estimator.update_and_carry, feed)

  def test_scores_match_the_unroll_by_unroll_trajectories(self):
    # Random initial learning rates (the start must draw them as the
    # training unroll did), a state carried from training and from one
    # trajectory to the next (k > 0 with reset_rnn_params) and a fresh one
    # (k = 0); the forward step with XLA and without.
    last = self._last_data()
    for xla, k in ((True, 0), (True, 3), (False, 3)):
      results = []
      for forward in (True, False):
        with tf.Graph().as_default():
          tf.set_random_seed(1)
          graph = self._graph(xla_apply=xla)
          with self._session() as sess:
            self._trained_state(sess, graph, last)
            before = sess.run(graph.train_output.carried_variables)
            rng = np.random.RandomState(1)
            if forward:
              cost = evaluation.evaluate(sess, graph, [4, 4, 4], last, k,
                                         True, 3, 8, 50, rng,
                                         log=lambda _: None)
            else:
              cost = np.mean(unroll_by_unroll(sess, graph, [4, 4, 4], last,
                                              k, True, 3, 8, 50, rng))
            after = sess.run(graph.train_output.carried_variables)
        # Neither touches the training state.
        for a, b in zip(before, after):
          self.assertAllEqual(a, b)
        results.append(cost)
      self.assertTrue(np.isfinite(results[1]))
      self.assertAllClose(results[0], results[1], rtol=2e-5,
                          msg="xla=%s k=%d" % (xla, k))

  def test_the_random_stream_of_training_is_unchanged(self):
    # After an evaluation, the next training unroll with a state reset
    # draws the same random initial learning rates as after the reference.
    # Two unrolls per trajectory: the draws of its second unroll are made
    # up for too.
    last = self._last_data()
    states = []
    for forward in (True, False):
      with tf.Graph().as_default():
        tf.set_random_seed(2)
        graph = self._graph()
        with self._session() as sess:
          rng = np.random.RandomState(1)
          if forward:
            evaluation.evaluate(sess, graph, [2, 1], last, 0, True, 3, 8, 50,
                                rng, log=lambda _: None)
          else:
            unroll_by_unroll(sess, graph, [2, 1], last, 0, True, 3, 8, 50,
                             rng)
          x0 = data_lib.initial_parameters(graph.problem, rng)
          feed = data_lib.feed(graph.train_output, x0, [3], 0,
                               data_lib.evaluation_data(last, [3], 8, 50,
                                                        rng)[0], True)
          states.append(sess.run(graph.train_output.carried_values, feed))
    for a, b in zip(*states):
      self.assertAllEqual(a, b)

  def test_the_forward_unroll_leaves_the_meta_gradient_unchanged(self):
    last = self._last_data()
    gradients = []
    for forward in (False, True):
      with tf.Graph().as_default():
        tf.set_random_seed(3)
        graph = self._graph(forward=forward)
        grads = tf.gradients(graph.train_output.meta_objective,
                             graph.meta_vars)
        with self._session() as sess:
          rng = np.random.RandomState(4)
          x0 = data_lib.initial_parameters(graph.problem, rng)
          data = data_lib.evaluation_data(last, [5], 8, 50, rng)[0]
          feed = data_lib.feed(graph.train_output, x0, [5], 0, data, True)
          gradients.append(sess.run(
              [g for g in grads if g is not None], feed))
    for a, b in zip(*gradients):
      self.assertAllEqual(a, b)

  def test_a_graph_without_the_forward_unroll_is_refused(self):
    with tf.Graph().as_default():
      graph = self._graph(forward=False)
      with self.assertRaisesRegex(ValueError, "evaluation_unroll"):
        evaluation.evaluate(None, graph, [2], self._last_data(), 0, True, 1,
                            8, 50, np.random.RandomState(0))


if __name__ == "__main__":
  tf.test.main()
