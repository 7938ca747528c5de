"""The meta-training graph of one problem: unroll, estimator, savers."""

import collections

import numpy as np
import tensorflow.compat.v1 as tf

from meta_training import config
from meta_training import estimators
from meta_training import unroll as unroll_lib
from optimizer import provenance
from optimizer import trainable_optimizer
from optimizer import utils

OPTIMIZER_SCOPE = trainable_optimizer.OPTIMIZER_SCOPE


MetaGraph = collections.namedtuple("MetaGraph", [
    "problem", "optimizer", "train_output", "meta_vars", "global_step",
    "estimator", "propagate_op", "summary_op", "saver", "progress",
    "best_evaluation", "meta_saver", "loop_var_values", "load_loop_vars_op",
    "evaluation_output", "task_outputs",
])


def build_meta_graph(problem_spec, optimizer_spec, meta_optimizer=None,
                     write_histograms=False, regularizer=None,
                     imitation=False, evaluation_unroll=False):
  """Builds the meta-training graph of one problem in the default graph.

  The unroll at the meta-parameter variables (`train_output`; with the
  optimizer's forward step for an estimator that never differentiates it,
  see `estimators.forward_only`) and, with a batch of
  `meta_optimizer.num_tasks` tasks, the others' (`task_outputs`, the first
  being `train_output`), the estimator that turns unrolls into
  meta-updates (`estimator`, named by `meta_optimizer.gradient_estimator`),
  the ops that copy the unroll's final state into its carried variables
  (`propagate_op`) or load given values into them (`load_loop_vars_op`,
  fed through `loop_var_values`), the summaries, progress counters, savers
  and, with `evaluation_unroll`, a forward-only unroll of the problem
  (`evaluation_output`, None otherwise) that runs a whole evaluation
  trajectory from fed `start_values` with the optimizer's forward step (see
  `evaluation.evaluate`).

  Args:
    problem_spec: `problem_spec.Spec` of the problem.
    optimizer_spec: `problem_spec.Spec` of a TrainableOptimizer.
    meta_optimizer: a `config.MetaOptimizer` (None: its defaults).
    write_histograms: also summarise the optimizer state, meta-parameters
      and meta-gradients as histograms (the original's summaries).
    regularizer: a `config.Regularizer` whose `graph_arguments` are passed
      to `unroll.build_unroll` (None: no regulariser).
    imitation: the estimator also minimises the imitation loss.
    evaluation_unroll: also build the forward-only evaluation unroll.

  Returns:
    A `MetaGraph`.
  """
  settings = meta_optimizer or config.MetaOptimizer()
  problem = problem_spec.build()
  optimizer = optimizer_spec.build()
  meta_vars = tf.get_collection(tf.GraphKeys.GLOBAL_VARIABLES,
                                scope=OPTIMIZER_SCOPE)
  arguments = regularizer.graph_arguments() if regularizer else {}

  ceiling = settings.loss_ceiling or None

  def unroll_fn(meta_values=None, forward_only=False):
    return unroll_lib.build_unroll(optimizer, problem, meta_values=meta_values,
                                   forward_only=forward_only,
                                   meta_loss_ceiling=ceiling, **arguments)

  forward_only = estimators.forward_only(settings.gradient_estimator)
  if settings.num_tasks < 1:
    raise ValueError("a meta-update needs at least one task, got num_tasks="
                     "%d" % settings.num_tasks)
  tasks = [unroll_fn(forward_only=forward_only)
           for _ in range(settings.num_tasks)]
  out = tasks[0]
  global_step = tf.train.get_or_create_global_step()
  estimator = estimators.make(settings.gradient_estimator, estimators.Context(
      out, unroll_fn, trained_variables(meta_vars, optimizer, settings),
      global_step, settings, imitation, tasks))
  propagate_op = tf.group(*[tf.assign(var, value) for var, value in
                            zip(out.carried_variables, out.carried_values)])
  loop_var_values = [tf.placeholder(var.dtype.base_dtype, var.get_shape())
                     for var in out.carried_variables]
  load_loop_vars_op = tf.group(*[
      tf.assign(var, value)
      for var, value in zip(out.carried_variables, loop_var_values)])
  summary_op = _summary_op(problem, out, estimator.meta_objective,
                           estimator.gradients, write_histograms)
  progress, best_evaluation = _counters()
  # Checkpoints are kept and named by checkpoint_files, not the Saver.
  saver = tf.train.Saver(max_to_keep=None)
  # The meta-parameters and their meta-optimizer slots (what a curriculum
  # stage restores).
  meta_saver = tf.train.Saver(
      [v for v in tf.global_variables()
       if v.op.name.startswith(OPTIMIZER_SCOPE + "/")])
  # Built last: the training graph's ops (and their random seeds) are the
  # same with or without it; it holds no global variables.
  evaluation_output = (_evaluation_unroll(optimizer, problem, regularizer)
                       if evaluation_unroll else None)
  return MetaGraph(problem, optimizer, out, meta_vars, global_step, estimator,
                   propagate_op, summary_op, saver, progress, best_evaluation,
                   meta_saver, loop_var_values, load_loop_vars_op,
                   evaluation_output, tasks)


def trained_variables(meta_vars, optimizer, settings):
  """The meta-parameters meta-training updates: those of the named groups
  `settings.train_groups` (see `TrainableOptimizer.META_PARAMETER_GROUPS`),
  or all of them.

  Raises:
    ValueError: a group the optimizer does not have, or none left.
  """
  if not settings.train_groups:
    return meta_vars
  groups = type(optimizer).META_PARAMETER_GROUPS
  known = [name for name, _ in groups]
  unknown = [g for g in settings.train_groups if g not in known]
  if unknown:
    raise ValueError("%s has no meta-parameter group %s; its groups: %s" % (
        type(optimizer).__name__, ", ".join(unknown),
        ", ".join(known) or "none"))
  chosen = [v for v in meta_vars
            if provenance.group_of(v.op.name, groups) in settings.train_groups]
  if not chosen:
    raise ValueError("the groups %s hold no meta-parameter of this %s" % (
        ", ".join(settings.train_groups), type(optimizer).__name__))
  return chosen


def _counters():
  """The progress counter and the best evaluation (saved in checkpoints)."""
  with tf.variable_scope("meta_training"):
    progress = tf.get_variable("meta_iterations_done", [], tf.int64,
                               initializer=tf.zeros_initializer(),
                               trainable=False)
    best_evaluation = tf.get_variable(
        "best_evaluation", [], tf.float32,
        initializer=tf.constant_initializer(np.inf), trainable=False)
  return progress, best_evaluation


def _evaluation_unroll(optimizer, problem, regularizer):
  """The forward-only unroll of evaluation trajectories (no meta-objective
  term: only the optimizee's steps matter)."""
  arguments = regularizer.graph_arguments() if regularizer else {}
  if arguments.get("optimizee_regularizer_weight") is None:
    arguments = {}
  else:
    arguments["meta_regularizer_weight"] = None
  with tf.name_scope("evaluation"):
    return unroll_lib.build_unroll(optimizer, problem, forward_only=True,
                                   **arguments)


def _summary_op(problem, out, meta_objective, gradients, write_histograms):
  """The merged summaries of a training unroll.

  Args:
    problem: the `Problem`.
    out: the first task's `UnrollOutput` (its state is summarised).
    meta_objective: the tasks' mean meta-objective.
    gradients: (meta-variable, raw gradient, applied gradient) triples.
    write_histograms: add the original's histograms (state, variables,
      gradients) to the meta-objective's scalars.
  """
  summaries = [tf.summary.scalar("MetaObjective", meta_objective),
               tf.summary.scalar("%s_MetaObjective" % type(problem).__name__,
                                 meta_objective)]
  if write_histograms:
    for key, value in zip(out.state_keys[0], out.output_state[0]):
      summaries.append(tf.summary.histogram(
          "State/%s" % key, utils.make_finite(value, tf.zeros_like(value))))
    for var, raw, grad in gradients:
      name = var.op.name
      summaries.append(tf.summary.histogram(name + "_rawgrad",
                                            tf.convert_to_tensor(raw)))
      summaries.append(tf.summary.histogram(name + "_var", var))
      summaries.append(tf.summary.histogram(name + "_grad", grad))
  return tf.summary.merge(summaries)
