"""The meta-training graph of one problem: unroll, meta-update, savers."""

import collections

import numpy as np
import tensorflow.compat.v1 as tf

from meta_training import config
from optimizer import trainable_optimizer
from optimizer import utils

OPTIMIZER_SCOPE = trainable_optimizer.OPTIMIZER_SCOPE


MetaGraph = collections.namedtuple("MetaGraph", [
    "problem", "optimizer", "train_output", "meta_vars", "global_step",
    "train_op", "train_and_propagate_op", "propagate_op", "summary_op",
    "saver", "progress", "best_evaluation", "meta_saver", "train_op_mt",
    "train_mt_and_propagate_op", "propagate_state", "loop_var_values",
    "load_loop_vars_op", "evaluation_output",
])


def build_meta_graph(problem_spec, optimizer_spec, meta_optimizer=None,
                     write_histograms=False, regularizer=None,
                     imitation=False, evaluation_unroll=False):
  """Builds the meta-training graph of one problem in the default graph.

  `train_and_propagate_op` (and `train_mt_and_propagate_op`) copy the
  unroll's final state into the loop variables unless the placeholder
  `propagate_state` is fed False: every unroll of a meta-iteration then runs
  the same fetches, so TensorFlow prepares (and graph-optimises) one
  executor for them instead of two. `load_loop_vars_op` assigns the values
  fed to the `loop_var_values` placeholders to the loop variables in one run.

  Args:
    problem_spec: `problem_spec.Spec` of the problem.
    optimizer_spec: `problem_spec.Spec` of a TrainableOptimizer.
    meta_optimizer: a `config.MetaOptimizer` (None: its defaults).
    write_histograms: also summarise the optimizer state, meta-parameters
      and meta-gradients as histograms (the original's summaries).
    regularizer: a `config.Regularizer` whose `graph_arguments` are passed
      to `TrainableOptimizer.train` (None: no regulariser).
    imitation: also build a train op minimising the imitation loss with the
      same RMSProp meta-optimizer (shared slots).
    evaluation_unroll: also build a forward-only unroll of the problem
      (`evaluation_output`, None otherwise) that runs a whole evaluation
      trajectory from fed `start_values` with the optimizer's forward step
      (see `evaluation.evaluate`).

  Returns:
    A `MetaGraph`.
  """
  settings = meta_optimizer or config.MetaOptimizer()
  problem = problem_spec.build()
  optimizer = optimizer_spec.build()
  meta_vars = tf.get_collection(tf.GraphKeys.GLOBAL_VARIABLES,
                                scope=OPTIMIZER_SCOPE)
  out = optimizer.train(
      problem, **(regularizer.graph_arguments() if regularizer else {}))
  global_step = tf.train.get_or_create_global_step()
  meta_optimizer = tf.train.RMSPropOptimizer(
      settings.learning_rate, decay=settings.rms_decay,
      epsilon=settings.rms_epsilon, use_locking=True)
  l2_reg, gradient_clip = settings.l2_reg, settings.gradient_clip

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

  gradients = list(zip(meta_vars, raw_grads, clipped))
  summary_op = _summary_op(problem, optimizer, out, gradients,
                           write_histograms)
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
  # Built last: the training graph's ops (and their random seeds) are the
  # same with or without it; it holds no global variables.
  evaluation_output = None
  if evaluation_unroll:
    arguments = regularizer.graph_arguments() if regularizer else {}
    if arguments.get("optimizee_regularizer_weight") is None:
      arguments = {}  # only the optimizee's steps matter here
    else:
      arguments["meta_regularizer_weight"] = None
    with tf.name_scope("evaluation"):
      evaluation_output = optimizer.train(problem, forward_only=True,
                                          **arguments)
  return MetaGraph(problem, optimizer, out, meta_vars, global_step, train_op,
                   train_and_propagate_op, propagate_op, summary_op, saver,
                   progress, best_evaluation, meta_saver, train_op_mt,
                   train_mt_and_propagate_op, propagate_state,
                   loop_var_values, load_loop_vars_op, evaluation_output)


def _summary_op(problem, optimizer, out, gradients, write_histograms):
  """The merged summaries of a training unroll.

  Args:
    problem: the `Problem`.
    optimizer: the TrainableOptimizer.
    out: its `TrainingOutput`.
    gradients: (meta-variable, raw gradient, clipped gradient) triples.
    write_histograms: add the original's histograms (state, variables,
      gradients) to the meta-objective's scalars.
  """
  summaries = [tf.summary.scalar("MetaObjective", out.meta_objective),
               tf.summary.scalar("%s_MetaObjective" % type(problem).__name__,
                                 out.meta_objective)]
  if write_histograms:
    for key, value in zip(sorted(optimizer._initialize_state(  # pylint: disable=protected-access
        out.initial_params[0])), out.output_state[0]):
      summaries.append(tf.summary.histogram(
          "State/%s" % key, utils.make_finite(value, tf.zeros_like(value))))
    for var, raw, grad in gradients:
      name = var.op.name
      summaries.append(tf.summary.histogram(name + "_rawgrad",
                                            tf.convert_to_tensor(raw)))
      summaries.append(tf.summary.histogram(name + "_var", var))
      summaries.append(tf.summary.histogram(name + "_grad", grad))
  return tf.summary.merge(summaries)
