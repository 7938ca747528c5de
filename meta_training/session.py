"""Sessions and files of meta-training: start, lock, save, snapshot."""

import tensorflow.compat.v1 as tf

from optimizer import checkpoint_files
from optimizer import checkpoints
from optimizer import trainable_optimizer
from run_control import lock

OPTIMIZER_SCOPE = trainable_optimizer.OPTIMIZER_SCOPE


def restore_or_initialize_fn(graph, logdir, log=print, shared=False,
                             resuming=True, checkpoint=None,
                             record_start=False):
  """A function of a session resuming from `logdir`'s latest checkpoint.

  Builds its ops now (call before finalising the graph). Without a
  checkpoint the function initialises every variable; with one it restores
  the variables the checkpoint holds and initialises the rest (e.g. the
  progress counters, absent from checkpoints of the original code).

  With `shared` (the chief of a cluster) the global variables live on the
  parameter servers and may already hold a live state: when they are all
  initialised the function only initialises this worker's local variables
  (and any global variable still uninitialised); only when none is
  initialised does it restore or initialise as above.

  The checkpoint is the newest one that reads back whole
  (`checkpoint_files.latest_complete`). `resuming` says whether it was
  there when the run started (the message "resuming from ...") or was
  written by this run for an earlier problem draw (no message).
  `checkpoint` names the prefix to restore instead of looking (the caller
  has verified it).

  With `record_start`, a fresh initialisation (no checkpoint to restore)
  also writes the meta-parameters it drew as `model.ckpt-initial`
  (`checkpoint_files.INITIAL`), unless the log directory holds one. The
  progress counter is initialised after that save and is not in it: the
  other workers of a cluster wait until every global variable is
  initialised, so no meta-update can reach the parameter servers before
  the start is on disk.

  Returns:
    fn(sess) -> the checkpoint path restored from, or None.
  """
  start = _restore_or_initialize_fn(graph, logdir, log, resuming, checkpoint,
                                    record_start)
  if not shared:
    return start
  global_vars = tf.global_variables()
  uninitialized = _uninitialized(global_vars)
  local_init = tf.local_variables_initializer()

  def join_or_start(sess):
    names = {n.decode() for n in sess.run(uninitialized)}
    if len(names) == len(global_vars):
      return start(sess)
    sess.run([v.initializer for v in global_vars if v.op.name in names] +
             [local_init])
    log("using the meta-parameters on the parameter servers, global step %d"
        % sess.run(graph.global_step))
    return None

  return join_or_start


def wait_for_chief_fn(cluster):
  """A function of a session of a worker other than the chief.

  Builds its ops now. The function waits until the chief has initialised
  (or restored) the global variables on the parameter servers, then
  initialises this worker's local variables.
  """
  uninitialized = _uninitialized(tf.global_variables())
  local_init = tf.local_variables_initializer()

  def wait(sess):
    cluster.wait_for_initialization(sess, uninitialized)
    sess.run(local_init)

  return wait


def _uninitialized(variables):
  """The names of the uninitialised `variables` (a string tensor)."""
  names = tf.report_uninitialized_variables(variables)
  # A run that stops before using it (e.g. no parameter server) is not a
  # bug worth TensorFlow's "never used" report at exit.
  names.mark_used()
  return names


def _restore_or_initialize_fn(graph, logdir, log, resuming, checkpoint,
                              record_start):
  local_init = tf.local_variables_initializer()
  path = checkpoint or checkpoint_files.latest_complete(logdir, log)
  if path is None:
    if record_start:
      return _initialize_and_record_fn(graph, logdir, log, local_init)
    global_init = tf.global_variables_initializer()

    def initialize(sess):
      sess.run([global_init, local_init])
      return None

    return initialize
  # The meta-parameters must be there; the other variables (slots,
  # counters) may be missing from older checkpoints.
  required = [v for v in tf.trainable_variables()
              if v.op.name.startswith(OPTIMIZER_SCOPE + "/")]
  checkpoints.check_compatible(
      path, required,
      optional=[v for v in tf.global_variables() if v not in required])
  stored = dict(tf.train.list_variables(path))
  present = [v for v in tf.global_variables() if v.op.name in stored]
  missing = [v for v in tf.global_variables() if v.op.name not in stored]
  restorer = tf.train.Saver(present)
  init_missing = tf.variables_initializer(missing)

  def restore(sess):
    restorer.restore(sess, path)
    sess.run([init_missing, local_init])
    if resuming:
      log("resuming from %s, global step %d" %
          (path, sess.run(graph.global_step)))
    return path

  return restore


def _initialize_and_record_fn(graph, logdir, log, local_init):
  """Initialises every variable, saving the start before the progress
  counter (see `restore_or_initialize_fn`)."""
  others = [v for v in tf.global_variables() if v is not graph.progress]
  init_others = tf.variables_initializer(others)
  init_progress = tf.variables_initializer([graph.progress])
  start_saver = tf.train.Saver(others)

  def initialize(sess):
    sess.run([init_others, local_init])
    if checkpoint_files.readable(logdir, checkpoint_files.INITIAL) is None:
      checkpoint_files.save_as(sess, start_saver, logdir,
                               checkpoint_files.INITIAL, designate=False)
      log("recorded the starting meta-parameters in %s" %
          checkpoint_files.INITIAL)
    sess.run(init_progress)
    return None

  return initialize


def open_log_directory(logdir, log=print, program="meta-training"):
  """Creates and locks `logdir`; completes or removes interrupted writes.

  The lock is re-entrant within a process (metarun.py takes it before
  checking the flags against the checkpoints, then `train_optimizer`).

  Returns:
    The held `lock.DirectoryLock`.

  Raises:
    lock.LockError: another process is writing there.
  """
  tf.io.gfile.makedirs(logdir)
  held = lock.DirectoryLock(logdir, program).acquire()
  completed, removed = checkpoint_files.recover(logdir)
  for checkpoint_name in completed:
    log("completed the interrupted save of %s" % checkpoint_name)
  if removed:
    log("removed %d temporary file(s) left by an interrupted run" %
        len(removed))
  return held



def save(sess, graph, logdir, number):
  """Writes `model.ckpt-<number>` (commit protocol of checkpoint_files)."""
  checkpoint_files.save(sess, graph.saver, logdir, number)


def snapshot(sess, graph):
  """The values of the loop variables (the training state)."""
  return sess.run(graph.train_output.carried_variables)


def restore_snapshot(sess, graph, values):
  """Loads `snapshot`'s values back, in one run."""
  sess.run(graph.load_loop_vars_op,
           dict(zip(graph.loop_var_values, values)))


class NoSummaries(object):
  """A FileWriter stand-in for workers that write no files."""

  def add_summary(self, summary, step):
    del summary, step

  def close(self):
    pass


def write_scalar(writer, tag, value, step):
  summary = tf.Summary(value=[tf.Summary.Value(tag=tag,
                                               simple_value=float(value))])
  writer.add_summary(summary, step)
