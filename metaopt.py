"""Meta-training of learned optimizers: `train_optimizer` and its helpers.

One meta-iteration optimises a freshly initialised optimizee for a number of
partial unrolls; after each unroll the meta-parameters (the optimizer's
variables under "LOL") take one RMSProp step on the unroll's meta-objective
and the optimizee/optimizer state is carried to the next unroll. Periodic
evaluation runs trajectories without meta-updates and keeps the best
meta-parameters in `model.ckpt-0`.

Library code: every setting is an explicit argument (metarun.py maps the
original's flags onto them).
"""

import collections
import contextlib
import math
import os
import random
import sys
import time

import numpy as np
import tensorflow.compat.v1 as tf

import curriculum
from evaluation import runner
import teacher as teacher_lib
from optimizer import checkpoint_files
from optimizer import checkpoints
from optimizer import trainable_optimizer
from optimizer import utils
from problems import datasets
from run_control import interrupts
from run_control import lock

OPTIMIZER_SCOPE = trainable_optimizer.OPTIMIZER_SCOPE
# The original's evaluation routine lives with the other evaluation code.
test_optimizer = runner.test_optimizer
CHECKPOINT_PREFIX = checkpoint_files.PREFIX


def sample_numiter(scale, min_steps=50, rng=None):
  """round(Exponential(scale)) + min_steps, clipped to [0, 3 min_steps]."""
  rng = np.random if rng is None else rng
  steps = int(np.round(rng.exponential(scale=scale))) + min_steps
  return int(np.clip(steps, 0, 3 * min_steps))


def sigmoid_weights(n, slope=0.1, offset=5):
  """Objective weights rising like a sigmoid over n steps, summing to 1."""
  x = np.arange(n)
  weights = 1. / (1. + np.exp(-slope * (x - offset)))
  return weights / np.sum(weights)


def regularizer_switch(unroll, num_unrolls, regularize_time, reg_scale):
  """Whether the regulariser is on for `unroll` of `num_unrolls`.

  With t = int(num_unrolls * reg_scale + 1): "posterior" -> unroll > t,
  "prior" -> unroll < t, "none" -> never, anything else -> always.
  """
  threshold = int(num_unrolls * reg_scale + 1)
  if regularize_time == "posterior":
    return unroll > threshold
  if regularize_time == "prior":
    return unroll < threshold
  if regularize_time == "none":
    return False
  return True


def unroll_lengths(fix_unroll, fix_unroll_length, fix_num_steps,
                   num_unroll_func, num_partial_unroll_itrs_func):
  """The lengths of the partial unrolls of one meta-iteration."""
  if fix_unroll:
    return [fix_unroll_length] * (fix_num_steps // fix_unroll_length)
  num_unrolls = num_unroll_func()
  return [num_partial_unroll_itrs_func() for _ in range(num_unrolls)]


def draw_problems(problems_and_data, num_problems, select_random_problems,
                  rng=None):
  """Entries of `problems_and_data` to train on, one per problem draw.

  Random draws with replacement, or (chief of several workers) the list
  shuffled and repeated.
  """
  rng = random if rng is None else rng
  if select_random_problems:
    return [rng.choice(problems_and_data) for _ in range(num_problems)]
  shuffled = list(problems_and_data)
  rng.shuffle(shuffled)
  repeats = num_problems // len(shuffled) + 1
  return (shuffled * repeats)[:num_problems]


class UnrollData(collections.namedtuple(
    "UnrollData", "mini_data mini_labels batches teacher_batches")):
  """What one partial unroll is fed: its mini-dataset and batch indices.

  `teacher_batches` holds the k index lists per learner step of an imitation
  unroll (the learner's batches are every k-th of them).
  """


def unroll_data(dataset, batch_size, lengths, mini_batch_size, data_freeze,
                rng=None, k=1):
  """Mini-datasets and batch indices for the unrolls of one meta-iteration.

  Each unroll gets a subset of min(mini_batch_size, N) samples: the first
  ones with `data_freeze`, else a fresh random subset. Batch indices index
  into the subset and run over all unrolls as one epoch sequence.

  Args:
    dataset: a `datasets.Dataset`, or None for data-free problems.
    batch_size: samples per batch.
    lengths: the unroll lengths.
    mini_batch_size: subset size.
    data_freeze: use the first samples for every unroll.
    rng: `np.random.RandomState` (default: NumPy's global generator).
    k: teacher batches per learner step (imitation; 1 otherwise).

  Returns:
    A list of `UnrollData`, one per unroll; for data-free problems the data
    fields are None (the placeholders' defaults apply).
  """
  if dataset is None or dataset.size == 0:
    return [UnrollData(None, None, None, [None] * (k * n)) for n in lengths]
  rng = np.random if rng is None else rng
  subset_size = min(mini_batch_size, dataset.size)
  indices = datasets.batch_indices(subset_size, k * sum(lengths), batch_size,
                                   rng=rng)
  labels = np.asarray(dataset.labels).reshape(len(dataset.labels), -1)[:, 0]
  result = []
  start = 0
  for length in lengths:
    if data_freeze:
      subset = np.arange(subset_size)
    else:
      subset = rng.permutation(dataset.size)[:subset_size]
    block = indices[start:start + k * length]
    result.append(UnrollData(
        dataset.data[subset], labels[subset].astype(np.int32),
        np.array(block[::k], dtype=np.int32), block))
    start += k * length
  return result


MetaGraph = collections.namedtuple("MetaGraph", [
    "problem", "optimizer", "train_output", "meta_vars", "global_step",
    "train_op", "train_and_propagate_op", "propagate_op", "summary_op",
    "saver", "progress", "best_evaluation", "meta_saver", "train_op_mt",
    "train_mt_and_propagate_op", "propagate_state", "loop_var_values",
    "load_loop_vars_op",
])


def build_meta_graph(problem_spec, optimizer_spec, learning_rate, rms_decay,
                     rms_epsilon, gradient_clip, l2_reg, write_histograms,
                     regularizer_fn=None, meta_regularizer_weight=None,
                     optimizee_regularizer_weight=None, imitation=False):
  """Builds the meta-training graph of one problem in the default graph.

  The regulariser arguments are those of `TrainableOptimizer.train`. With
  `imitation`, a second train op minimises the imitation loss `metaobjmt`
  with the same RMSProp meta-optimizer (shared slots).

  `train_and_propagate_op` (and `train_mt_and_propagate_op`) copy the
  unroll's final state into the loop variables unless the placeholder
  `propagate_state` is fed False: every unroll of a meta-iteration then runs
  the same fetches, so TensorFlow prepares (and graph-optimises) one
  executor for them instead of two. `load_loop_vars_op` assigns the values
  fed to the `loop_var_values` placeholders to the loop variables in one run.

  Returns:
    A `MetaGraph`.
  """
  problem = problem_spec.build()
  optimizer = optimizer_spec.build()
  meta_vars = tf.get_collection(tf.GraphKeys.GLOBAL_VARIABLES,
                                scope=OPTIMIZER_SCOPE)
  out = optimizer.train(
      problem, regularizer_fn=regularizer_fn,
      meta_regularizer_weight=meta_regularizer_weight,
      optimizee_regularizer_weight=optimizee_regularizer_weight)
  global_step = tf.train.get_or_create_global_step()
  meta_optimizer = tf.train.RMSPropOptimizer(
      learning_rate, decay=rms_decay, epsilon=rms_epsilon, use_locking=True)
  def meta_update(objective):
    if l2_reg:
      objective += l2_reg * tf.add_n([tf.reduce_sum(tf.square(v))
                                      for v in meta_vars])
    raw = tf.gradients(objective, meta_vars)
    clipped = [tf.clip_by_value(utils.make_finite(g, tf.zeros_like(g)),
                                -gradient_clip, gradient_clip)
               for g in (tf.convert_to_tensor(g) for g in raw)]
    # Every meta-gradient is complete before any meta-parameter changes:
    # reads of reference variables alias their buffers (see E14).
    with tf.control_dependencies(clipped):
      op = meta_optimizer.apply_gradients(zip(clipped, meta_vars),
                                          global_step=global_step)
    return op, raw, clipped

  pairs = list(zip(out.carried_variables, out.carried_values))

  propagate_state = tf.placeholder_with_default(True, [],
                                                name="propagate_state")

  def then_propagate(op):
    # The state carried on is the one of the forward pass that produced the
    # meta-gradient (one session.run); the copies wait for the meta-update
    # so that no read of the old state by the backward pass can see them:
    # the cond's predicate, and so every op of its branches, waits for it.
    with tf.control_dependencies([op]):
      propagate = tf.identity(propagate_state)
    copies = tf.cond(
        propagate,
        lambda: tf.group(*[tf.assign(var, value) for var, value in pairs]),
        tf.no_op)
    return tf.group(op, copies)

  train_op, raw_grads, clipped = meta_update(out.meta_objective)
  train_and_propagate_op = then_propagate(train_op)
  propagate_op = tf.group(*[tf.assign(var, value) for var, value in pairs])
  loop_var_values = [tf.placeholder(var.dtype.base_dtype, var.get_shape())
                     for var in out.carried_variables]
  load_loop_vars_op = tf.group(*[
      tf.assign(var, value)
      for var, value in zip(out.carried_variables, loop_var_values)])
  train_op_mt = train_mt_and_propagate_op = None
  if imitation:
    train_op_mt, _, _ = meta_update(out.imitation_loss)
    train_mt_and_propagate_op = then_propagate(train_op_mt)

  summaries = [tf.summary.scalar("MetaObjective", out.meta_objective),
               tf.summary.scalar("%s_MetaObjective" % type(problem).__name__,
                                 out.meta_objective)]
  if write_histograms:
    for key, value in zip(sorted(optimizer._initialize_state(  # pylint: disable=protected-access
        out.initial_params[0])), out.output_state[0]):
      summaries.append(tf.summary.histogram(
          "State/%s" % key, utils.make_finite(value, tf.zeros_like(value))))
    for var, raw, grad in zip(meta_vars, raw_grads, clipped):
      name = var.op.name
      summaries.append(tf.summary.histogram(name + "_rawgrad",
                                            tf.convert_to_tensor(raw)))
      summaries.append(tf.summary.histogram(name + "_var", var))
      summaries.append(tf.summary.histogram(name + "_grad", grad))
  summary_op = tf.summary.merge(summaries)

  with tf.variable_scope("meta_training"):
    progress = tf.get_variable("meta_iterations_done", [], tf.int64,
                               initializer=tf.zeros_initializer(),
                               trainable=False)
    best_evaluation = tf.get_variable(
        "best_evaluation", [], tf.float32,
        initializer=tf.constant_initializer(np.inf), trainable=False)
  # Checkpoints are kept and named by checkpoint_files, not the Saver.
  saver = tf.train.Saver(max_to_keep=None)
  # The meta-parameters and their RMSProp slots (what a curriculum stage
  # restores).
  meta_saver = tf.train.Saver(
      [v for v in tf.global_variables()
       if v.op.name.startswith(OPTIMIZER_SCOPE + "/")])
  return MetaGraph(problem, optimizer, out, meta_vars, global_step, train_op,
                   train_and_propagate_op, propagate_op, summary_op, saver,
                   progress, best_evaluation, meta_saver, train_op_mt,
                   train_mt_and_propagate_op, propagate_state,
                   loop_var_values, load_loop_vars_op)


def restore_or_initialize_fn(graph, logdir, log=print, shared=False,
                             resuming=True, checkpoint=None):
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

  Returns:
    fn(sess) -> the checkpoint path restored from, or None.
  """
  start = _restore_or_initialize_fn(graph, logdir, log, resuming, checkpoint)
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


def _restore_or_initialize_fn(graph, logdir, log, resuming, checkpoint):
  local_init = tf.local_variables_initializer()
  path = checkpoint or checkpoint_files.latest_complete(logdir, log)
  if path is None:
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


class Progress(object):
  """Prints one line per meta-iteration with elapsed time and ETA."""

  def __init__(self, total, done=0, out=sys.stdout):
    self.total = total
    self.start_done = done
    self.start = time.time()
    self.out = out

  def line(self, k, meta_objective, evaluation, note=""):
    elapsed = time.time() - self.start
    finished = k + 1 - self.start_done
    eta = elapsed / max(finished, 1) * (self.total - k - 1)
    cost = "-" if evaluation is None else "%.6g" % evaluation
    self.out.write("meta-iteration %d/%d%s  meta-objective %.6g  evaluation "
                   "%s  elapsed %.1fs  ETA %.1fs\n" %
                   (k + 1, self.total, note, meta_objective, cost, elapsed,
                    eta))
    self.out.flush()


def _feed(out, x0, lengths, unroll, data, reset, switch=False):
  feed = {out.objective_weights: np.ones(lengths[unroll], np.float32) /
                           lengths[unroll],
          out.first_unroll: unroll == 0,
          out.reset_state: reset,
          out.regularizer_on: switch}
  feed.update(zip(out.initial_params, x0))
  if data.mini_data is not None:
    feed[out.mini_data] = data.mini_data
    feed[out.mini_labels] = data.mini_labels
    feed[out.batches] = data.batches
  return feed


def _initial_parameters(problem, rng):
  """N(0, 1) starting parameters, as the original's meta-training drew."""
  return [rng.standard_normal(shape).astype(np.float32)
          for shape in problem.param_shapes]


def _snapshot(sess, graph):
  """The values of the loop variables (the training state)."""
  return sess.run(graph.train_output.carried_variables)


def _restore_snapshot(sess, graph, values):
  """Loads `_snapshot`'s values back, in one run."""
  sess.run(graph.load_loop_vars_op,
           dict(zip(graph.loop_var_values, values)))


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
  """
  out = graph.train_output
  saved = _snapshot(sess, graph)
  costs = []
  for _ in range(evaluation_epochs):
    log("validation...")
    x0 = _initial_parameters(graph.problem, rng)
    data = _evaluation_data(last_data, lengths, batch_size, mini_batch_size,
                            rng)
    for unroll in range(len(lengths)):
      reset = unroll == 0 and (k == 0 if reset_rnn_params else True)
      feed = _feed(out, x0, lengths, unroll, data[unroll], reset)
      feed[out.record_objectives] = record_every_step
      # The last unroll's copies are undone by the restore below; one set
      # of fetches for every unroll means one executor.
      objectives, _ = sess.run([out.problem_objectives, graph.propagate_op],
                               feed)
    costs.append(objectives[-1])
  _restore_snapshot(sess, graph, saved)
  return float(np.mean(costs))


def _evaluation_data(last_data, lengths, batch_size, mini_batch_size, rng):
  if last_data.mini_data is None:
    return [UnrollData(None, None, None, None)] * len(lengths)
  size = min(mini_batch_size, len(last_data.mini_data))
  indices = datasets.batch_indices(size, sum(lengths), batch_size, rng=rng)
  result = []
  start = 0
  for length in lengths:
    result.append(UnrollData(last_data.mini_data, last_data.mini_labels,
                             np.array(indices[start:start + length],
                                      dtype=np.int32), None))
    start += length
  return result


def train_optimizer(logdir, optimizer_spec, problems_and_data,
                    num_problems=1, num_meta_iterations=5,
                    num_unroll_func=None, num_partial_unroll_itrs_func=None,
                    learning_rate=1e-4, gradient_clip=5., is_chief=False,
                    select_random_problems=True, obj_train_max_multiplier=-1,
                    fix_unroll=False, fix_unroll_length=20, fix_num_steps=100,
                    fix_num_steps_eval=100, evaluation_period=1,
                    evaluation_epochs=20, save_period=1, mini_batch_size=10000,
                    data_freeze=False, reset_rnn_params=True, l2_reg=0.,
                    rms_decay=0.9, rms_epsilon=1e-20,
                    regularize_time="posterior",
                    reg_scale=0.5, regularizer_fn=None,
                    meta_regularizer_weight=None,
                    optimizee_regularizer_weight=None, write_histograms=False,
                    curriculum_factory=None, if_mt=False, mt_ratio=0.1,
                    mt_k=1, teacher_name="adam",
                    teacher_learning_rate=0.01, seed=None, cluster=None,
                    out=sys.stdout):
  """Meta-trains the optimizer of `optimizer_spec` on `problems_and_data`.

  Args:
    logdir: folder of the checkpoints (`model.ckpt-N`, best:
      `model.ckpt-0`) and TensorBoard events. A run started again in the
      same folder resumes from the latest checkpoint.
    optimizer_spec: `problem_spec.Spec` of a TrainableOptimizer.
    problems_and_data: list of (problem Spec, Dataset or None, batch size).
    num_problems: number of problem draws (one graph each).
    num_meta_iterations: meta-iterations per draw.
    num_unroll_func: () -> number of unrolls (random schedule).
    num_partial_unroll_itrs_func: () -> length of an unroll (random
      schedule).
    learning_rate: RMSProp meta learning rate.
    gradient_clip: meta-gradients are clipped to [-clip, clip] after
      non-finite entries are replaced by 0.
    is_chief: whether this task saves the final checkpoint (with a
      `cluster`, ignored: the cluster's worker 0 is the chief).
    select_random_problems: draw problems at random (else round-robin).
    obj_train_max_multiplier: if > 0, a meta-iteration stops its unrolls
      once the objective exceeds initial + (m - 1) |initial|.
    fix_unroll: fixed schedule of fix_num_steps // fix_unroll_length unrolls
      of fix_unroll_length steps (else random, from the two functions).
    fix_unroll_length: steps per unroll (fixed schedule and evaluation).
    fix_num_steps: steps per meta-iteration (fixed schedule).
    fix_num_steps_eval: steps per evaluation trajectory.
    evaluation_period: evaluate after every this many meta-iterations.
    evaluation_epochs: trajectories averaged per evaluation.
    save_period: save `model.ckpt-<k>` every this many meta-iterations.
    mini_batch_size: samples in each unroll's mini-dataset.
    data_freeze: every unroll uses the first mini_batch_size samples.
    reset_rnn_params: True: reset the optimizer state only at the start of
      the first meta-iteration; False: at the start of every one.
    l2_reg: weight of the L2 penalty on the meta-parameters.
    rms_decay, rms_epsilon: RMSProp meta-optimizer settings.
    regularize_time, reg_scale: per-unroll regulariser switch (see
      `regularizer_switch`).
    regularizer_fn: (objective, params) -> scalar, e.g. from
      `regularizers.registry.make_regularizer`; None: no regulariser.
    meta_regularizer_weight: alpha; adds alpha * sum_t R_t to the
      meta-objective of switched-on unrolls (None: off).
    optimizee_regularizer_weight: beta; adds beta * R_t to the optimizee's
      objective (None: off).
    write_histograms: also write the original's histogram summaries.
    curriculum_factory: if set (--if_cl), a function returning a fresh
      `curriculum.CurriculumSchedule` per problem draw; it then decides the
      unroll counts, evaluation horizons, checkpoints and stopping, and the
      fixed/random schedule arguments and save_period are ignored.
    if_mt: imitation training: each meta-iteration is, with probability
      `mt_ratio`, an imitation one: the optimizee follows a teacher
      (`teacher_name` at `teacher_learning_rate`, `mt_k` teacher steps per
      learner step) and the meta-parameters minimise the imitation loss.
    seed: seeds NumPy and Python draws of this run (None: unseeded, as the
      original).
    cluster: a `cluster.Worker` for distributed meta-training, or None for
      one process. With one, the global variables live on the parameter
      servers and this worker's unroll state on itself; the chief
      initialises or restores the meta-parameters, evaluates, and alone
      writes checkpoints and summaries; the other workers wait for its
      initialisation, meta-train without evaluating, and report to it when
      done; the chief waits for them and then saves `model.ckpt-<total>`
      once more, so that it holds every worker's updates.
    out: stream for progress lines.

  Returns:
    The best evaluation cost seen (inf if none).
  """
  log = lambda message: (out.write(message + "\n"), out.flush())
  shared = cluster is not None
  if shared:
    is_chief = cluster.is_chief
  # Only the chief of a cluster evaluates and writes files.
  writes = not shared or is_chief
  np_rng = np.random.RandomState(seed)
  py_rng = random.Random(seed)
  if num_unroll_func is None:
    num_unroll_func = lambda: sample_numiter(40, 10, np_rng)
  if num_partial_unroll_itrs_func is None:
    num_partial_unroll_itrs_func = lambda: sample_numiter(20, 10, np_rng)
  total = num_problems * num_meta_iterations
  held = open_log_directory(logdir, log) if writes else None
  writer = _NoSummaries()
  progress = None
  done_now = 0
  try:
    start_checkpoint = (checkpoint_files.latest_complete(logdir, log)
                        if writes else None)
    draws = draw_problems(problems_and_data, num_problems,
                          select_random_problems, py_rng)
    best = np.inf
    eval_lengths = [fix_unroll_length] * (fix_num_steps_eval //
                                          fix_unroll_length)
    if writes:
      writer = tf.summary.FileWriter(logdir)
    for draw, (spec, dataset, batch_size) in enumerate(draws):
      graph_obj = tf.Graph()
      with graph_obj.as_default():
        with cluster.placement() if shared else contextlib.nullcontext():
          if seed is not None:
            tf.set_random_seed(seed + draw)
          graph = build_meta_graph(
              spec, optimizer_spec, learning_rate, rms_decay, rms_epsilon,
              gradient_clip, l2_reg, write_histograms, regularizer_fn,
              meta_regularizer_weight, optimizee_regularizer_weight,
              imitation=if_mt)
          if writes:
            start_session = restore_or_initialize_fn(
                graph, logdir, log, shared=shared,
                resuming=draw == 0 and start_checkpoint is not None,
                checkpoint=start_checkpoint if draw == 0 else None)
          else:
            start_session = wait_for_chief_fn(cluster)
        graph_obj.finalize()
        teacher = (teacher_lib.Teacher(graph.problem, teacher_name,
                                       teacher_learning_rate)
                   if if_mt else None)
        session = (cluster.session(graph_obj) if shared
                   else tf.Session(graph=graph_obj))
        with session as sess:
          start_session(sess)
          # The progress counters are the chief's; the other workers of a
          # cluster always run all their meta-iterations.
          done = int(sess.run(graph.progress)) if writes else 0
          done_now = max(done_now, done)
          best = float(sess.run(graph.best_evaluation)) if writes else best
          if progress is None:
            progress = Progress(total, done, out)
          first = max(done - draw * num_meta_iterations, 0)
          if first >= num_meta_iterations:
            if draw + 1 == len(draws):
              log("all %d meta-iterations are already done in %s" %
                  (total, logdir))
            continue
          log("problem %d/%d: %s" % (draw + 1, len(draws),
                                     type(graph.problem).__name__))
          schedule = curriculum_factory() if curriculum_factory else None
          for local_k in range(first, num_meta_iterations):
            k = draw * num_meta_iterations + local_k
            graph.problem.init_fn(sess)
            if schedule is not None:
              lengths = [fix_unroll_length] * schedule.train_unrolls
            else:
              lengths = unroll_lengths(fix_unroll, fix_unroll_length,
                                       fix_num_steps, num_unroll_func,
                                       num_partial_unroll_itrs_func)
            imitate = if_mt and py_rng.random() < mt_ratio
            metaobj, last_data = _meta_iteration(
                sess, graph, writer, dataset, batch_size, lengths, local_k,
                reset_rnn_params, mini_batch_size, data_freeze,
                obj_train_max_multiplier, regularize_time, reg_scale, np_rng,
                teacher if imitate else None, mt_k)
            if not np.isfinite(metaobj):
              log("warning: meta-iteration %d/%d: the meta-objective is %s "
                  "(non-finite meta-gradients are zeroed; lower "
                  "--meta_learning_rate if this persists)" %
                  (k + 1, total, metaobj))
            evaluation = None
            stop = False
            if writes and (local_k + 1) % evaluation_period == 0:
              def run_evaluation(num_unrolls):
                return evaluate(
                    sess, graph, [fix_unroll_length] * num_unrolls, last_data,
                    local_k, reset_rnn_params, evaluation_epochs, batch_size,
                    mini_batch_size, np_rng, log=lambda _: None)
              if schedule is not None:
                evaluation, stop = _curriculum_step(
                    sess, graph, logdir, schedule, run_evaluation,
                    (local_k + 1) // evaluation_period, log)
              else:
                evaluation = evaluate(
                    sess, graph, eval_lengths, last_data, local_k,
                    reset_rnn_params, evaluation_epochs, batch_size,
                    mini_batch_size, np_rng, log=lambda _: None)
                log("evaluation %d, cost=%.6g" %
                    ((local_k + 1) // evaluation_period, evaluation))
              _write_scalar(writer, "Evaluation", evaluation,
                            sess.run(graph.global_step))
              if not np.isfinite(evaluation):
                log("warning: meta-iteration %d/%d: the evaluation cost is "
                    "%s" % (k + 1, total, evaluation))
            if writes:
              graph.progress.load(k + 1, sess)
            done_now = k + 1
            if schedule is None and writes:
              if evaluation is not None and evaluation < best:
                best = evaluation
                graph.best_evaluation.load(best, sess)
                _save(sess, graph, logdir, 0)
                log("new best evaluation: saved %s-0" % CHECKPOINT_PREFIX)
              if (local_k + 1) % save_period == 0 or (
                  is_chief and local_k + 1 == num_meta_iterations):
                _save(sess, graph, logdir, k + 1)
            elif schedule is not None:
              best = float(sess.run(graph.best_evaluation))
            note = ""
            if schedule is not None:
              note = "  [curriculum stage %d: %d steps]" % (
                  schedule.stage, schedule.num_steps[schedule.stage])
            if imitate:
              note += "  [imitation]"
            progress.line(k, metaobj, evaluation, note)
            if stop:
              break
        if teacher is not None:
          teacher.close()
    if shared:
      _finish_cluster_run(cluster, graph_obj, graph, logdir, total, log)
  except interrupts.Interrupted as e:
    raise RunInterrupted(
        e.signum, min(done_now + 1, total), total,
        checkpoint_files.latest(logdir) if writes else None) from None
  finally:
    writer.close()
    if held is not None:
      held.release()
  if not writes:
    log("worker %d: done" % cluster.config.task)
    return best
  if np.isfinite(best):
    log("checkpoints in %s (best evaluation %.6g in %s-0)" %
        (logdir, best, CHECKPOINT_PREFIX))
  else:
    log("checkpoints in %s; no evaluation was finite, so %s-0 (the best) "
        "was not written" % (logdir, CHECKPOINT_PREFIX))
  return best


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


class RunInterrupted(interrupts.Interrupted):
  """SIGINT/SIGTERM during meta-training, with where the run stood.

  Attributes:
    meta_iteration: the meta-iteration under way (1-based).
    total: meta-iterations of the run.
    checkpoint: the prefix a rerun resumes from, or None.
  """

  def __init__(self, signum, meta_iteration, total, checkpoint):
    super().__init__(signum)
    self.meta_iteration = meta_iteration
    self.total = total
    self.checkpoint = checkpoint

def _finish_cluster_run(cluster, graph_obj, graph, logdir, total, log):
  """The end of a worker's run in a cluster (see `cluster` for the protocol).

  The chief waits for every other worker, then saves `model.ckpt-<total>`
  from the last draw's graph, so that the checkpoint holds every worker's
  updates; any other worker reports to the chief.
  """
  if not cluster.is_chief:
    cluster.report_done()
    return
  cluster.wait_for_other_workers()
  with cluster.session(graph_obj) as sess:
    _save(sess, graph, logdir, total)
    log("saved %s-%d after every worker finished, global step %d" %
        (CHECKPOINT_PREFIX, total, sess.run(graph.global_step)))


class _NoSummaries(object):
  """A FileWriter stand-in for workers that write no files."""

  def add_summary(self, summary, step):
    del summary, step

  def close(self):
    pass


def _save(sess, graph, logdir, number):
  checkpoint_files.save(sess, graph.saver, logdir, number)


def _curriculum_step(sess, graph, logdir, schedule, run_evaluation, index,
                     log):
  """Evaluates at the stage's horizon and acts on the schedule's verdict.

  Returns:
    (evaluation cost, whether to stop meta-training this problem).
  """
  stage = schedule.stage
  cost = run_evaluation(schedule.eval_unrolls)
  log("evaluation %d, num_steps=%d, cost=%.6g" %
      (index, schedule.num_steps[stage], cost))
  action = schedule.record(cost)
  if action == curriculum.IMPROVED:
    # model.ckpt-0 holds the latest improvement, as in the original.
    graph.best_evaluation.load(cost, sess)
    _save(sess, graph, logdir, stage)
    names = sorted({"%s-%d" % (CHECKPOINT_PREFIX, stage),
                    "%s-0" % CHECKPOINT_PREFIX})
    if stage:
      _save(sess, graph, logdir, 0)
    log("curriculum %d improved: saved %s" % (stage, " and ".join(names)))
  elif action == curriculum.ADVANCE:
    graph.meta_saver.restore(sess, os.path.join(
        logdir, "%s-%d" % (CHECKPOINT_PREFIX, stage)))
    baseline = run_evaluation(schedule.eval_unrolls)
    schedule.set_baseline(baseline)
    log("curriculum %d -> %d: restored %s-%d; evaluation %d, num_steps=%d, "
        "cost=%.6g" % (stage, schedule.stage, CHECKPOINT_PREFIX, stage, index,
                       schedule.num_steps[schedule.stage], baseline))
  elif action == curriculum.STOP:
    log("no improve during curriculum %d --> stop" % stage)
    return cost, True
  elif action == curriculum.FINISHED:
    log("curriculum finished at stage %d" % stage)
    return cost, True
  return cost, False


def _write_scalar(writer, tag, value, step):
  summary = tf.Summary(value=[tf.Summary.Value(tag=tag,
                                               simple_value=float(value))])
  writer.add_summary(summary, step)


def _meta_iteration(sess, graph, writer, dataset, batch_size, lengths, k,
                    reset_rnn_params, mini_batch_size, data_freeze,
                    obj_train_max_multiplier, regularize_time, reg_scale,
                    rng, teacher=None, mt_k=1):
  """Runs the unrolls of one meta-iteration, one meta-update each.

  With a `teacher` this is an imitation meta-iteration: the optimizee
  follows the teacher's steps and only the imitation train op runs.

  Returns:
    (mean meta-objective of the unrolls (imitation loss for an imitation
    meta-iteration), UnrollData of the last unroll).
  """
  out = graph.train_output
  x0 = _initial_parameters(graph.problem, rng)
  k_teacher = mt_k if teacher is not None else 1
  data = unroll_data(dataset, batch_size, lengths, mini_batch_size,
                     data_freeze, rng, k=k_teacher)
  targets = None
  if teacher is not None:
    targets = teacher.targets(
        x0, [(d.mini_data, d.mini_labels, d.teacher_batches) for d in data],
        mt_k)
  metaobjs = []
  for unroll in range(len(lengths)):
    interrupts.check()
    reset = unroll == 0 and (k == 0 if reset_rnn_params else True)
    switch = regularizer_switch(unroll, len(lengths), regularize_time,
                                reg_scale)
    feed = _feed(out, x0, lengths, unroll, data[unroll], reset, switch)
    # The last unroll's state is not carried on.
    feed[graph.propagate_state] = unroll + 1 < len(lengths)
    if targets is not None:
      feed[out.imitating] = True
      feed.update(zip(out.teacher_steps, targets[unroll]))
      loss, _ = sess.run([out.imitation_loss, graph.train_mt_and_propagate_op],
                         feed)
      metaobjs.append(loss)
      continue
    metaobj, objectives, initial, summary, _, step = sess.run(
        [out.meta_objective, out.problem_objectives, out.initial_objective,
         graph.summary_op, graph.train_and_propagate_op, graph.global_step],
        feed)
    writer.add_summary(summary, step)
    metaobjs.append(metaobj)
    if np.any(objectives < 0):
      raise ValueError("Training problem objectives must be nonnegative.")
    if obj_train_max_multiplier > 0 and (
        objectives[-1] > initial + abs(initial) *
        (obj_train_max_multiplier - 1)):
      break
  return float(np.mean(metaobjs)), data[min(unroll, len(data) - 1)]
