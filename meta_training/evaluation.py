"""Evaluation during meta-training: trajectories without meta-updates."""

import numpy as np

from meta_training import data as data_lib
from meta_training import session as session_lib


def evaluate(sess, graph, lengths, last_data, k, reset_rnn_params,
             evaluation_epochs, batch_size, mini_batch_size, rng, log=print,
             record_every_step=False):
  """Mean final objective of `evaluation_epochs` trajectories.

  Each trajectory starts from fresh N(0, 1) parameters, runs the steps of
  `lengths` with no meta-update, on the mini-dataset of the last training
  unroll, and scores the objective on that mini-dataset at its last step
  (the last recorded objective of its last unroll).

  How (fidelity note M28): a trajectory is one `session.run` of the
  graph's forward-only unroll (`graph.evaluation_output`: the optimizer's
  forward step, no gradient bookkeeping), started from the values the
  training unroll computes in a run of no steps. The random initial values
  of the optimizer state are so drawn by the training graph's ops, once
  more per further unroll of `lengths`, as when the trajectory ran unroll
  by unroll through the training graph: the training unrolls that follow
  draw what they drew before. Without a state reset (k > 0 with
  `reset_rnn_params`) each trajectory's optimizer state starts from the one
  the trajectory before it ended with, as before; the training state is
  left as it was. The scores agree with the unroll-by-unroll trajectories
  to float32 rounding (tested), except that a trajectory whose objective
  becomes non-finite stops there (it scores non-finite either way) and,
  with `obj_train_max_multiplier` > 0, a trajectory stopped by the
  multiplier scores the objective where it stopped.

  Only the last objective is scored, so the whole-mini-dataset objective is
  computed at the last step only (`record_objectives` False; see
  `TrainableOptimizer.train`); `record_every_step` computes it at every
  step, as the original did, for the same score at several times the cost.

  Args:
    sess: a session of `graph`.
    graph: a `graph.MetaGraph` built with `evaluation_unroll`.
    lengths: the trajectory's unroll lengths (it runs their sum of steps).
    last_data: the `UnrollData` of the last training unroll.
    k: the meta-iteration within the draw (0: the state may reset).
    reset_rnn_params: see `config.Data.reset_state_once`.
    evaluation_epochs: trajectories averaged.
    batch_size: samples per batch.
    mini_batch_size: subset size.
    rng: `np.random.RandomState` of the starts and batches.
    log: called with "validation..." per trajectory.
    record_every_step: see above.

  Raises:
    ValueError: the graph has no evaluation unroll.
  """
  forward = graph.evaluation_output
  if forward is None:
    raise ValueError("evaluate needs a graph built with evaluation_unroll "
                     "(graph.build_meta_graph)")
  out = graph.train_output
  reset = k == 0 if reset_rnn_params else True
  total = sum(lengths)
  saved = None if reset else session_lib.snapshot(sess, graph)
  costs = []
  for epoch in range(evaluation_epochs):
    log("validation...")
    x0 = data_lib.initial_parameters(graph.problem, rng)
    data = data_lib.evaluation_data(last_data, lengths, batch_size,
                                    mini_batch_size, rng)
    # The start: the training unroll's carried values after no steps.
    start = sess.run(out.carried_values, data_lib.feed(
        out, x0, [0], 0, _joined(last_data, data, 0), reset))
    # The draws of the trajectory's other unrolls through the training
    # graph (see `unroll.UnrollOutput.draw_initial_state`).
    for _ in range(len(lengths) - 1):
      sess.run(out.draw_initial_state, dict(zip(out.initial_params, x0)))
    feed = data_lib.feed(forward, x0, [total], 0,
                         _joined(last_data, data, total), False)
    feed.update(zip(forward.start_values, start))
    feed[forward.record_objectives] = record_every_step
    objectives, end = sess.run([forward.problem_objectives,
                                forward.carried_values], feed)
    costs.append(objectives[-1])
    if saved is not None and epoch + 1 < evaluation_epochs:
      session_lib.restore_snapshot(sess, graph, end)
  if saved is not None:
    session_lib.restore_snapshot(sess, graph, saved)
  return float(np.mean(costs))


def _joined(last_data, data, steps):
  """One `UnrollData` of the trajectory's first `steps` batches (its unrolls'
  batches joined)."""
  if last_data.mini_data is None:
    return data_lib.NO_DATA
  batches = np.concatenate([d.batches for d in data])
  return data_lib.UnrollData(last_data.mini_data, last_data.mini_labels,
                             batches[:steps], None)
