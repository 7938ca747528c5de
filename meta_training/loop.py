"""The meta-iteration loop of one problem draw, and its progress lines.

`MetaTrainer` holds a run's state across problem draws (random generators,
summary writer, progress, best evaluation); `train_draw` builds a draw's
graph, opens its session and runs its meta-iterations. The schedule
(`schedule.make`) decides the unroll lengths and what follows an
evaluation; the role (`roles`) decides who evaluates and writes files. The
schedules' hooks act through `MetaTrainer`'s checkpoint methods (`save`,
`keep_best`, `restore_meta_parameters`, `evaluate`, ...).
"""

import collections
import os
import random
import sys
import time

import numpy as np
import tensorflow.compat.v1 as tf

from meta_training import data as data_lib
from meta_training import evaluation
from meta_training import graph as graph_lib
from meta_training import schedule as schedule_lib
from meta_training import session as session_lib
from meta_training import teacher as teacher_lib
from optimizer import checkpoint_files
from optimizer import provenance
from run_control import interrupts

Settings = collections.namedtuple("Settings", [
    "schedule", "meta_optimizer", "evaluation", "data", "regularizer",
    "imitation"])
Settings.__doc__ = """The `config` objects of a run (one of each kind)."""


class Progress(object):
  """Prints one line per meta-iteration with elapsed time and ETA."""

  def __init__(self, total, done=0, out=sys.stdout):
    self.total = total
    self.start_done = done
    self.start = time.time()
    self.out = out

  def line(self, k, meta_objective, cost, note="", moved=None):
    """Prints meta-iteration k's line; `moved` is the meta-parameters'
    relative distance from the recorded start (None: not shown)."""
    elapsed = time.time() - self.start
    finished = k + 1 - self.start_done
    eta = elapsed / max(finished, 1) * (self.total - k - 1)
    cost = "-" if cost is None else "%.6g" % cost
    moved = "" if moved is None else "  moved %.3g%%" % (100. * moved)
    self.out.write("meta-iteration %d/%d%s  meta-objective %.6g  evaluation "
                   "%s%s  elapsed %.1fs  ETA %.1fs\n" %
                   (k + 1, self.total, note, meta_objective, cost, moved,
                    elapsed, eta))
    self.out.flush()


class MetaTrainer(object):
  """A run's meta-iterations, draw by draw.

  Attributes:
    np_rng, py_rng: the run's NumPy and Python generators (seeded by
      `seed`); their draw order is the original's.
    total: meta-iterations of the run.
    best: the best evaluation cost seen (inf if none).
    done_now: meta-iterations done, counting those of a resumed run.
    start: the recorded start's meta-parameters (name -> array), or None
      (a worker that writes no files, or a log directory without one).
    moved: the meta-parameters' relative distance from `start` after the
      last meta-iteration run (None: not measured).
    at_start: whether every meta-parameter is then within float32
      resolution of its start.
  """

  def __init__(self, logdir, optimizer_spec, settings, seed, role, out):
    self.logdir = logdir
    self.optimizer_spec = optimizer_spec
    self.settings = settings
    self.seed = seed
    self.role = role
    self.out = out
    self.np_rng = np.random.RandomState(seed)
    self.py_rng = random.Random(seed)
    schedule = settings.schedule
    self.total = schedule.num_problems * schedule.num_meta_iterations
    self.best = np.inf
    self.done_now = 0
    self.writer = session_lib.NoSummaries()
    self.start = None
    self.moved = self.at_start = None
    self._skipped = 0
    self._progress = None
    # The draw under way: its session, graph and the last training data.
    self._sess = self._graph = self._last_data = None
    self._local_k = self._batch_size = self._validation = None
    self._trajectories = None

  def log(self, message):
    self.out.write(message + "\n")
    self.out.flush()

  def open_summaries(self):
    if self.role.writes:
      self.writer = tf.summary.FileWriter(self.logdir)

  def close_summaries(self):
    self.writer.close()

  def train_draw(self, draw, entry, num_draws, checkpoint):
    """Meta-trains problem draw `draw` (0-based) of `num_draws`.

    Args:
      draw: index of the draw.
      entry: (problem Spec, Dataset or None, batch size).
      num_draws: draws of the run.
      checkpoint: the checkpoint to start from (first draw only), or None.

    Returns:
      (tf.Graph, graph.MetaGraph) of the draw.
    """
    spec, dataset, self._batch_size = entry
    dataset, self._validation = data_lib.training_parts(
        dataset, self.settings.data.meta_objective_split, spec)
    graph_obj, graph, start_session = self._build(draw, spec, checkpoint)
    imitation = self.settings.imitation
    teacher = (teacher_lib.Teacher(graph.problem, imitation.teacher_name,
                                   imitation.teacher_learning_rate)
               if imitation.enabled else None)
    with self.role.session(graph_obj) as sess:
      self._sess, self._graph = sess, graph
      start_session(sess)
      if self.start is None and self.role.writes:
        self.start = self._read_start()
      self._run_draw(draw, num_draws, dataset, teacher)
    if teacher is not None:
      teacher.close()
    return graph_obj, graph

  def _build(self, draw, spec, checkpoint):
    graph_obj = tf.Graph()
    with graph_obj.as_default():
      with self.role.placement():
        if self.seed is not None:
          tf.set_random_seed(self.seed + draw)
        graph = graph_lib.build_meta_graph(
            spec, self.optimizer_spec, self.settings.meta_optimizer,
            self.settings.evaluation.write_histograms,
            self.settings.regularizer, self.settings.imitation.enabled,
            evaluation_unroll=self.role.evaluates)
        start_session = self.role.start_fn(graph, self.logdir, self.log,
                                           checkpoint)
    graph_obj.finalize()
    return graph_obj, graph, start_session

  def _run_draw(self, draw, num_draws, dataset, teacher):
    sess, graph = self._sess, self._graph
    per_draw = self.settings.schedule.num_meta_iterations
    # The progress counters are the chief's; the other workers of a
    # cluster always run all their meta-iterations.
    done = int(sess.run(graph.progress)) if self.role.writes else 0
    self.done_now = max(self.done_now, done)
    if self.role.writes:
      self.best = float(sess.run(graph.best_evaluation))
    if graph.estimator.skipped is not None:
      self._skipped = int(sess.run(graph.estimator.skipped))
    if self._progress is None:
      self._progress = Progress(self.total, done, self.out)
    first = max(done - draw * per_draw, 0)
    if first >= per_draw:
      if draw + 1 == num_draws:
        self.log("all %d meta-iterations are already done in %s" %
                 (self.total, self.logdir))
      return
    self.log("problem %d/%d: %s" % (draw + 1, num_draws,
                                    type(graph.problem).__name__))
    schedule = schedule_lib.make(self.settings.schedule,
                                 self.settings.evaluation,
                                 self.role.saves_last)
    # Horizon sampling: the tasks' trajectories, carried across
    # meta-iterations (None: the task has not started one).
    self._trajectories = [None] * len(graph.task_outputs)
    for local_k in range(first, per_draw):
      if self._step(schedule, local_k, draw * per_draw + local_k, dataset,
                    teacher):
        break

  def _step(self, schedule, local_k, k, dataset, teacher):
    """Meta-iteration k (local_k of the draw); returns whether to stop."""
    sess, graph = self._sess, self._graph
    graph.problem.init_fn(sess)
    lengths = schedule.unroll_lengths()
    imitation = self.settings.imitation
    imitate = imitation.enabled and self.py_rng.random() < imitation.ratio
    self._local_k = local_k
    meta_objective, self._last_data = self._meta_iteration(
        dataset, schedule, lengths, teacher if imitate else None)
    if not np.isfinite(meta_objective):
      self.log("warning: meta-iteration %d/%d: the meta-objective is %s "
               "(non-finite meta-gradients are zeroed; lower "
               "--meta_learning_rate if this persists)" %
               (k + 1, self.total, meta_objective))
    if graph.estimator.skipped is not None:
      skipped = int(sess.run(graph.estimator.skipped))
      if skipped > self._skipped:
        self.log("warning: meta-iteration %d/%d: %d meta-update(s) skipped "
                 "for a non-finite meta-gradient (%d in all)" %
                 (k + 1, self.total, skipped - self._skipped, skipped))
      self._skipped = skipped
    cost, stop = None, False
    period = self.settings.evaluation.period
    if self.role.evaluates and (local_k + 1) % period == 0:
      cost = self.evaluate(schedule.evaluation_lengths())
      stop = schedule.after_evaluation(cost, (local_k + 1) // period, self)
      session_lib.write_scalar(self.writer, "Evaluation", cost,
                               sess.run(graph.global_step))
      if not np.isfinite(cost):
        self.log("warning: meta-iteration %d/%d: the evaluation cost is %s"
                 % (k + 1, self.total, cost))
    if self.role.writes:
      graph.progress.load(k + 1, sess)
    self.done_now = k + 1
    self._measure_movement()
    if cost is not None and self.moved is not None:
      session_lib.write_scalar(self.writer, "MetaParameterChange",
                               self.moved, sess.run(graph.global_step))
    if self.role.writes:
      schedule.after_meta_iteration(local_k, k, cost, self)
    note = schedule.note + ("  [imitation]" if imitate else "")
    self._progress.line(k, meta_objective, cost, note,
                        self.moved if cost is not None else None)
    return stop

  def report_movement(self, meta_learning_rate):
    """The run's last lines: how far the meta-parameters moved from their
    recorded start, and a warning when they are effectively still there."""
    if self.moved is None:
      return
    self.log("the meta-parameters moved %.3g %% of their norm from the start "
             "(%s)" % (100. * self.moved, checkpoint_files.INITIAL))
    if self.at_start or self.moved < provenance.EFFECTIVELY_UNMOVED:
      self.log(
          "warning: after %d meta-iterations at --meta_learning_rate=%g the "
          "meta-parameters are effectively where they started (%s), so this "
          "run's optimizer is its own initialisation; raise "
          "--meta_learning_rate or run more --num_meta_iterations (RMSProp's "
          "mean-square slot starts at 1, so its first steps are about "
          "meta_learning_rate * |meta-gradient|: the original's default "
          "1e-6 hardly moves anything)" % (
              self.done_now, meta_learning_rate,
              "every change below float32 resolution" if self.at_start else
              "moved less than %g %% of their norm" %
              (100. * provenance.EFFECTIVELY_UNMOVED)))

  def _read_start(self):
    """The recorded start's meta-parameters, or None without one."""
    prefix = checkpoint_files.readable(self.logdir, checkpoint_files.INITIAL)
    if prefix is None:
      self.log("note: %s has no recorded start (%s; the run began before "
               "starts were recorded), so how far the meta-parameters move "
               "is not shown" % (self.logdir, checkpoint_files.INITIAL))
      return None
    return provenance.read(prefix, [v.op.name for v in self._graph.meta_vars])

  def _measure_movement(self):
    """Updates `moved` and `at_start` from the session's meta-parameters."""
    if self.start is None:
      return
    values = dict(zip((v.op.name for v in self._graph.meta_vars),
                      self._sess.run(self._graph.meta_vars)))
    self.moved = provenance.relative_change(values, self.start)
    self.at_start = all(provenance.below_resolution(values[n], self.start[n])
                        for n in self.start)

  def _meta_iteration(self, dataset, schedule, lengths, teacher):
    """Runs the partial unrolls of one meta-iteration, one meta-update each.

    Every unroll runs the next partial unroll of every task of the batch.
    With the fixed, random and curriculum schedules each task runs one
    trajectory of `lengths`, from new initial parameters, in the
    meta-iteration. With horizon sampling (`schedule.samples_horizons`)
    each task goes on with its own trajectory, started when its last one
    ended (see `schedule.HorizonSchedule`), for len(lengths) unrolls.

    With a `teacher` this is an imitation meta-iteration: the optimizee
    follows the teacher's steps and only the imitation train op runs.

    Returns:
      (mean meta-objective of the unrolls (imitation loss for an imitation
      meta-iteration), UnrollData of the first task's last unroll).
    """
    sess, graph = self._sess, self._graph
    settings = self.settings
    num_tasks = len(graph.task_outputs)
    horizons = schedule.samples_horizons
    if horizons and teacher is not None:
      raise ValueError("imitation has no form with horizon sampling")
    if horizons:
      trajectories = self._trajectories
    else:
      trajectories = [self._trajectory(dataset, lengths, teacher,
                                       self._local_k == 0)
                      for _ in range(num_tasks)]
    max_multiplier = settings.schedule.max_objective_multiplier
    fetches = {"summary": graph.summary_op, "step": graph.global_step}
    for task, out in enumerate(graph.task_outputs):
      fetches["objectives/%d" % task] = out.problem_objectives
      fetches["initial/%d" % task] = out.initial_objective
    meta_objectives = []
    for unroll in range(len(lengths)):
      interrupts.check()
      if horizons:
        for task, trajectory in enumerate(trajectories):
          if trajectory is None or trajectory.done:
            trajectories[task] = self._trajectory(
                dataset, schedule.trajectory_lengths(
                    self.np_rng, task, num_tasks, trajectory is None),
                None, trajectory is None)
      # Each partial unroll's data, read (copied) once.
      current = [t.data[t.next] for t in trajectories]

      def feed_for(unroll_output, task, current=current):
        trajectory = trajectories[task]
        position = trajectory.next
        feed = data_lib.feed(
            unroll_output, trajectory.x0, trajectory.lengths, position,
            current[task], trajectory.reset and position == 0,
            schedule_lib.regularizer_switch(
                position, len(trajectory.lengths),
                settings.regularizer.timing,
                settings.regularizer.switch_fraction))
        if trajectory.targets is not None:
          feed[unroll_output.imitating] = True
          feed.update(zip(unroll_output.teacher_steps,
                          trajectory.targets[position]))
        return feed

      # Without horizon sampling the last unroll's state is not carried on.
      result = graph.estimator.run(
          sess, feed_for, imitating=teacher is not None,
          carry=horizons or unroll + 1 < len(lengths), fetches=fetches)
      meta_objectives.append(result["meta_objective"])
      if teacher is not None:
        for trajectory in trajectories:
          trajectory.next += 1
        continue
      self.writer.add_summary(result["summary"], result["step"])
      ended = False
      for task, trajectory in enumerate(trajectories):
        trajectory.next += 1
        objectives = result["objectives/%d" % task]
        initial = result["initial/%d" % task]
        if np.any(objectives < 0):
          raise ValueError("Training problem objectives must be nonnegative.")
        if max_multiplier > 0 and (
            objectives[-1] > initial + abs(initial) * (max_multiplier - 1)):
          ended = True
          trajectory.next = len(trajectory.lengths)
        elif horizons and not np.isfinite(objectives[-1]):
          # A diverged task starts a new trajectory.
          trajectory.next = len(trajectory.lengths)
      if ended and not horizons:
        break
    return float(np.mean(meta_objectives)), current[0]

  def _trajectory(self, dataset, lengths, teacher, first):
    """A task's new trajectory of unrolls of `lengths`: its initial
    parameters, data and (with a `teacher`) teacher steps. `first`: the
    first of the problem draw (without horizon sampling: of the draw's
    first meta-iteration)."""
    settings = self.settings
    x0 = data_lib.initial_parameters(self._graph.problem, self.np_rng)
    k_teacher = (settings.imitation.teacher_steps if teacher is not None
                 else 1)
    data = data_lib.unroll_data(dataset, self._batch_size, lengths,
                                settings.data.mini_batch_size,
                                settings.data.frozen, self.np_rng,
                                k=k_teacher, validation=self._validation)
    targets = None
    if teacher is not None:
      targets = teacher.targets(
          x0, ((d.mini_data, d.mini_labels, d.teacher_batches) for d in data),
          k_teacher)
    # The optimizer state starts afresh on the trajectory's first unroll;
    # with --reset_rnn_params only on the first trajectory (the original
    # carries the state on from one meta-iteration to the next).
    reset = first if settings.data.reset_state_once else True
    return _Trajectory(x0, lengths, data, targets, reset)

  # What the schedules' hooks may do (see `schedule`).

  def evaluate(self, lengths):
    """The evaluation cost of trajectories of `lengths` (no meta-update)."""
    settings = self.settings
    return evaluation.evaluate(
        self._sess, self._graph, lengths, self._last_data, self._local_k,
        settings.data.reset_state_once, settings.evaluation.epochs,
        self._batch_size, settings.data.mini_batch_size, self.np_rng,
        log=lambda _: None)

  def checkpoint_name(self, number):
    return "%s-%d" % (checkpoint_files.PREFIX, number)

  def save(self, number):
    session_lib.save(self._sess, self._graph, self.logdir, number)

  def keep_best(self, cost):
    """A new best evaluation: recorded and saved as model.ckpt-0."""
    self.best = cost
    self.load_best(cost)
    self.save(0)
    self.log("new best evaluation: saved %s" % self.checkpoint_name(0))

  def load_best(self, cost):
    """Records `cost` in the graph's best-evaluation variable."""
    self._graph.best_evaluation.load(cost, self._sess)

  def reload_best(self):
    self.best = float(self._sess.run(self._graph.best_evaluation))

  def restore_meta_parameters(self, number):
    """Restores the meta-parameters and their slots of model.ckpt-<number>."""
    self._graph.meta_saver.restore(
        self._sess, os.path.join(self.logdir, self.checkpoint_name(number)))


class _Trajectory(object):
  """One task's trajectory: where it starts, its unrolls' data, and the
  index of its next partial unroll (`next`)."""

  def __init__(self, x0, lengths, data, targets, reset):
    self.x0 = x0
    self.lengths = lengths
    self.data = data
    self.targets = targets
    self.reset = reset
    self.next = 0

  @property
  def done(self):
    return self.next >= len(self.lengths)
