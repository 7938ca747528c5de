"""Who does what in a meta-training run.

  SingleProcess  one process: evaluates, writes checkpoints and summaries.
  Chief          worker 0 of a cluster: as one process, on the parameter
                 servers' variables; at the end waits for the other workers
                 and saves once more (see `cluster` for the protocol).
  OtherWorker    any other worker of a cluster: waits for the chief's
                 initialisation, meta-trains without evaluating or writing
                 files, and reports to the chief when done.
"""

import contextlib

import numpy as np
import tensorflow.compat.v1 as tf

from meta_training import session as session_lib
from optimizer import checkpoint_files


def for_worker(worker, saves_last=True):
  """The role of a `cluster.Worker`, or of one process (worker None).

  Args:
    worker: a `cluster.Worker`, or None.
    saves_last: one process only: whether it saves after each draw's last
      meta-iteration (the original's chief did; a chief always does).
  """
  if worker is None:
    return SingleProcess(saves_last)
  return Chief(worker) if worker.is_chief else OtherWorker(worker)


class SingleProcess(object):
  """One process, the original's only mode."""

  evaluates = True
  writes = True
  _shared = False

  def __init__(self, saves_last=True):
    self.saves_last = saves_last

  def placement(self):
    """Where the graph's variables go (everywhere: this process)."""
    return contextlib.nullcontext()

  def session(self, graph_obj):
    return tf.Session(graph=graph_obj)

  def open_log_directory(self, logdir, log):
    """The held lock of `logdir` (see `session.open_log_directory`)."""
    return session_lib.open_log_directory(logdir, log)

  def latest_checkpoint(self, logdir, log):
    """The checkpoint the run starts from, or None."""
    return checkpoint_files.latest_complete(logdir, log)

  def resume_checkpoint(self, logdir):
    """The checkpoint a rerun resumes from (after an interrupt), or None."""
    return checkpoint_files.latest(logdir)

  def start_fn(self, graph, logdir, log, checkpoint):
    """fn(sess): initialises (recording the start), or restores
    `checkpoint` (the checkpoint the run resumes from)."""
    return session_lib.restore_or_initialize_fn(
        graph, logdir, log, shared=self._shared,
        resuming=checkpoint is not None, checkpoint=checkpoint,
        record_start=True)

  def finish(self, graph_obj, graph, logdir, total, log):
    """Runs after the last draw; nothing to do for one process."""
    del graph_obj, graph, logdir, total, log

  def report(self, logdir, best, log):
    """The run's last line."""
    prefix = checkpoint_files.PREFIX
    if np.isfinite(best):
      log("checkpoints in %s (best evaluation %.6g in %s-0)" %
          (logdir, best, prefix))
    else:
      log("checkpoints in %s; no evaluation was finite, so %s-0 (the best) "
          "was not written" % (logdir, prefix))


class Chief(SingleProcess):
  """Worker 0 of a cluster."""

  _shared = True

  def __init__(self, worker):
    super().__init__(saves_last=True)
    self.worker = worker

  def placement(self):
    return self.worker.placement()

  def session(self, graph_obj):
    return self.worker.session(graph_obj)

  def finish(self, graph_obj, graph, logdir, total, log):
    """Waits for the other workers, then saves `model.ckpt-<total>`.

    The checkpoint comes from the last draw's graph and holds every
    worker's updates.
    """
    self.worker.wait_for_other_workers()
    with self.worker.session(graph_obj) as sess:
      session_lib.save(sess, graph, logdir, total)
      log("saved %s-%d after every worker finished, global step %d" %
          (checkpoint_files.PREFIX, total, sess.run(graph.global_step)))


class OtherWorker(Chief):
  """A worker of a cluster other than the chief."""

  evaluates = False
  writes = False

  def open_log_directory(self, logdir, log):
    return None

  def latest_checkpoint(self, logdir, log):
    return None

  def resume_checkpoint(self, logdir):
    return None

  def start_fn(self, graph, logdir, log, checkpoint):
    del logdir, log, checkpoint
    return session_lib.wait_for_chief_fn(self.worker)

  def finish(self, graph_obj, graph, logdir, total, log):
    del graph_obj, graph, logdir, total, log
    self.worker.report_done()

  def report(self, logdir, best, log):
    del logdir, best
    log("worker %d: done" % self.worker.config.task)
