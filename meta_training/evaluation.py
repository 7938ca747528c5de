"""Evaluation during meta-training: trajectories without meta-updates."""

import numpy as np

from meta_training import data as data_lib
from meta_training import session as session_lib


def evaluate(sess, graph, lengths, last_data, k, reset_rnn_params,
             evaluation_epochs, batch_size, mini_batch_size, rng, log=print,
             record_every_step=False):
  """Mean final objective of `evaluation_epochs` trajectories.

  Each trajectory starts from fresh N(0, 1) parameters, runs the unrolls of
  `lengths` with state propagation but no meta-update, on the mini-dataset
  of the last training unroll, and scores the last recorded objective. The
  training state (local variables) is saved before and restored after, so
  evaluation never disturbs training.

  Only the last objective is scored, so the whole-mini-dataset objective is
  computed at each unroll's last step only (`record_objectives` False; see
  `TrainableOptimizer.train`); `record_every_step` computes it at every
  step, as the original did, for the same score at several times the cost.

  Args:
    sess: a session of `graph`.
    graph: a `graph.MetaGraph`.
    lengths: the trajectory's unroll lengths.
    last_data: the `UnrollData` of the last training unroll.
    k: the meta-iteration within the draw (0: the state may reset).
    reset_rnn_params: see `config.Data.reset_state_once`.
    evaluation_epochs: trajectories averaged.
    batch_size: samples per batch.
    mini_batch_size: subset size.
    rng: `np.random.RandomState` of the starts and batches.
    log: called with "validation..." per trajectory.
    record_every_step: see above.
  """
  out = graph.train_output
  saved = session_lib.snapshot(sess, graph)
  costs = []
  for _ in range(evaluation_epochs):
    log("validation...")
    x0 = data_lib.initial_parameters(graph.problem, rng)
    data = data_lib.evaluation_data(last_data, lengths, batch_size,
                                    mini_batch_size, rng)
    for unroll in range(len(lengths)):
      reset = unroll == 0 and (k == 0 if reset_rnn_params else True)
      feed = data_lib.feed(out, x0, lengths, unroll, data[unroll], reset)
      feed[out.record_objectives] = record_every_step
      # The last unroll's copies are undone by the restore below; one set
      # of fetches for every unroll means one executor.
      objectives, _ = sess.run([out.problem_objectives, graph.propagate_op],
                               feed)
    costs.append(objectives[-1])
  session_lib.restore_snapshot(sess, graph, saved)
  return float(np.mean(costs))
