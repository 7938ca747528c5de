"""The meta-training unroll: a learned optimizer optimising a problem.

`build_unroll(optimizer, problem)` builds one partial unroll in a
`tf.while_loop`: T inner steps of the optimizer on the problem, their
objectives, the scaled meta-objective and the state to carry to the next
unroll. Meta-training concerns live here, not in the optimizer: teacher
forcing (imitation), the regulariser switch, validation objectives and the
objective scaling. The optimizer contributes its step
(`TrainableOptimizer.compute_steps` and the state hooks around it); built
inside `optimizer.meta_parameters_at(values)` (the `meta_values` argument),
the unroll runs at meta-parameter values other than its variables, e.g.
theta + sigma * epsilon for evolution strategies.
"""

import collections
import contextlib
import weakref

import tensorflow.compat.v1 as tf

from optimizer import trainable_optimizer

OPTIMIZER_SCOPE = trainable_optimizer.OPTIMIZER_SCOPE
_LOCAL_VARIABLE_PREFIX = "local_state_"
# Per graph: local state variable base name -> number of uses. (The original
# kept this dict in a graph collection, which breaks MetaGraph export.)
_LOCAL_STATE_NAME_COUNTS = weakref.WeakKeyDictionary()

UnrollOutput = collections.namedtuple("UnrollOutput", [
    "meta_objective",      # scaled meta-objective + regulariser term
    "imitation_loss",      # weighted imitation (teacher-step MSE) loss
    "objective_weights",   # placeholder [T]: objective weights; T = length
    "problem_objectives",  # [T + 1]: F_start, F_0, ..., F_{T-1}
    "initial_objective",   # objective at the start of the unroll sequence
    "batches",             # placeholder [T, batch]: indices into mini_data
    "first_unroll",        # placeholder: restart from initial_params
    "reset_state",         # placeholder: restart the optimizer state
    "output_state",        # final per-tensor states (key-sorted lists)
    "carried_variables",   # local variables carried between unrolls
    "carried_values",      # the values to copy into them
    "regularizer_on",      # placeholder: regulariser on for this unroll
    "mini_data",           # placeholder: the unroll's mini-dataset
    "mini_labels",         # placeholder: its integer labels
    "teacher_steps",       # placeholders [T, *shape]: teacher update steps
    "initial_params",      # placeholders: initial optimizee parameters
    "imitating",           # placeholder: teacher-forced (imitation) unroll
    "record_objectives",   # placeholder: whole-data objective at every step
    "start_values",        # the loop's starting values, as carried_values
    "draw_initial_state",  # op: the state's initial values, drawn once
    "objective_data",      # placeholder: data of the meta-objective
    "objective_labels",    # placeholder: its labels
    "state_keys",          # per tensor, the sorted keys of `output_state`
])

# What the while loop carries from one inner step to the next.
LoopState = collections.namedtuple("LoopState", [
    "step",            # inner step index t
    "objective_sum",   # sum of obj_weights[t] * objective_t so far
    "imitation_sum",   # sum of obj_weights[t] * imitation MSE_t so far
    "params",          # per tensor, the optimizee's (true) parameters
    "attended",        # per tensor, where the next gradients are taken
    "states",          # per tensor, the state in the optimizer's loop form
    "global_state",    # list of problem-level state tensors
    "objectives",      # [t + 1]: F_start, F_0, ..., F_{t-1}
    "regularizer",     # accumulated meta-regulariser term
])


def build_unroll(optimizer, problem, regularizer_fn=None,
                 meta_regularizer_weight=None,
                 optimizee_regularizer_weight=None, swap_memory=False,
                 forward_only=False, meta_values=None,
                 meta_loss_ceiling=None):
  """Builds one partial unroll of optimizing `problem` with `optimizer`.

  Each `session.run` of the outputs runs T = len(objective_weights) inner
  steps. Between runs the caller copies `carried_values` into
  `carried_variables` (local variables) so that the next unroll continues
  the trajectory; `first_unroll` restarts the optimizee from
  `initial_params`, `reset_state` restarts the optimizer state.

  Feeds (fields of the `UnrollOutput`): `objective_weights` [T];
  `initial_params` (one array per parameter); `mini_data` / `mini_labels`
  (the unroll's data, integer labels) and `batches` [T, batch_size]
  (indices into them) for data-driven problems; optionally `first_unroll`,
  `reset_state`, `regularizer_on`, `imitating` (all default False),
  `teacher_steps` (default zeros), `record_objectives` (default True) and
  `objective_data` / `objective_labels` (default: the mini-dataset). An
  imitating unroll moves the parameters by the teacher's steps;
  `imitation_loss` compares the optimizer's own steps with them.

  `problem_objectives` records the objective on the whole mini-dataset at
  every step, which the meta-objective needs. Fed `objective_data` and
  `objective_labels` (e.g. held-out validation samples), those objectives
  and the initial one are taken on them instead; the steps still see only
  the batches of `mini_data`. A run that only reads the last entry
  (evaluation) feeds `record_objectives` False: that objective is then
  computed at the unroll's last step only, the other steps record the batch
  objective instead (it still stops a diverging unroll), and the last entry
  is unchanged. With the optimizer's `obj_train_max_multiplier` > 0 the
  loop condition reads every entry, so every step records the whole
  objective whatever is fed.

  Args:
    optimizer: a `TrainableOptimizer`.
    problem: a `problem_generator.Problem` with fully defined
      `param_shapes`.
    regularizer_fn: optional function (objective, params) -> scalar, a
      curvature regulariser of the batch objective (see regularizers/).
    meta_regularizer_weight: if set (alpha), the meta-objective gains
      alpha * sum_t regularizer_t over the steps of unrolls run with
      `regularizer_on` true. When the switch is false the regulariser is
      not computed at all.
    optimizee_regularizer_weight: if set (beta), every inner step minimises
      batch_objective + beta * regularizer; its gradients are then the
      plain gradients of that sum (the problem's gradient noise is dropped,
      as in the original).
    swap_memory: `tf.while_loop`'s swap_memory.
    forward_only: the unroll is never differentiated (evaluation, or an
      estimator that needs no meta-gradient): the optimizer's steps are its
      forward form (`compute_steps(differentiable=False)`). Such an unroll
      can be started anywhere by feeding `start_values` (e.g. the
      `carried_values` of another unroll of the same problem, fetched with
      no steps).
    meta_values: optional dict meta-parameter name -> tensor: the unroll's
      steps use these values in place of those variables (see
      `TrainableOptimizer.meta_parameters_at`).
    meta_loss_ceiling: optional bound c of the meta-objective's per-step
      terms (see `scale_objective`).

  Returns:
    An `UnrollOutput`.

  Raises:
    ValueError: a regulariser weight is given without `regularizer_fn`.
  """
  if regularizer_fn is None and (meta_regularizer_weight is not None or
                                 optimizee_regularizer_weight is not None):
    raise ValueError("a regularizer weight needs regularizer_fn")
  at_values = (optimizer.meta_parameters_at(meta_values) if meta_values
               else contextlib.nullcontext())
  with at_values:
    return _build(optimizer, problem, regularizer_fn, meta_regularizer_weight,
                  optimizee_regularizer_weight, swap_memory, forward_only,
                  meta_loss_ceiling)


def _build(optimizer, problem, regularizer_fn, meta_regularizer_weight,
           optimizee_regularizer_weight, swap_memory, forward_only,
           meta_loss_ceiling):
  """`build_unroll`'s graph (the meta-parameter values already chosen)."""
  shapes = [tuple(s) for s in problem.param_shapes]
  obj_weights = tf.placeholder(tf.float32, [None], name="obj_weights")
  num_iter = tf.shape(obj_weights)[0]
  mini_data = tf.placeholder_with_default(tf.zeros([0]), None,
                                          name="mini_data")
  mini_labels = tf.placeholder_with_default(tf.zeros([0], tf.int32), None,
                                            name="mini_labels")
  batches = tf.placeholder_with_default(
      tf.zeros(tf.stack([num_iter, 0]), tf.int32), [None, None],
      name="batches")
  first_unroll = tf.placeholder_with_default(False, [], name="first_unroll")
  reset_state = tf.placeholder_with_default(False, [], name="reset_state")
  regularizer_on = tf.placeholder_with_default(False, [], name="jacob_switch")
  imitating = tf.placeholder_with_default(False, [], name="mode_mt")
  record_objectives = tf.placeholder_with_default(True, [],
                                                  name="record_objectives")
  objective_data = tf.placeholder_with_default(mini_data, None,
                                               name="objective_data")
  objective_labels = tf.placeholder_with_default(mini_labels, None,
                                                 name="objective_labels")
  init_tensors = [tf.placeholder(tf.float32, shape, name="init_tensor")
                  for shape in shapes]
  teacher_steps = [tf.placeholder_with_default(
      tf.zeros(tf.concat([[num_iter], tf.constant(shape, tf.int32)], 0)),
      (None,) + shape, name="mt_labels") for shape in shapes]

  # Starting values: fed on a first unroll, carried otherwise.
  param_vars, params0 = local_state_variables(init_tensors, first_unroll)
  attend_vars, attend0 = local_state_variables(init_tensors, first_unroll)
  f_start = problem.objective(params0, objective_data, objective_labels)
  [obj_var], [initial_obj] = local_state_variables([f_start], first_unroll)
  state_keys, state_vars, state_starts, loop_states0 = [], [], [], []
  initial_values = []
  for x, param in zip(init_tensors, params0):
    initial = optimizer.initial_state(x)
    initial_values.extend(initial.values())
    keys = sorted(initial)
    variables, values = local_state_variables(
        [initial[k] for k in keys], reset_state)
    restarted = optimizer.restarted_state(dict(zip(keys, values)), param)
    values = _select(tf.logical_and(first_unroll,
                                    tf.logical_not(reset_state)),
                     [restarted[k] for k in keys], values)
    state_keys.append(keys)
    state_vars.append(variables)
    state_starts.append(values)
    loop_states0.append(optimizer.to_loop_state(dict(zip(keys, values)),
                                                param))
  initial_global = optimizer.initial_global_state()
  global_vars, global0 = local_state_variables(initial_global, reset_state)
  # Every run of the unroll draws the state's initial values (random ones
  # included), reset or not: they are computed outside the cond that
  # selects them. Running this op (`initial_params` fed) draws them as one
  # such run does.
  draw_initial_state = tf.group(*(initial_values + list(initial_global)),
                                name="draw_initial_state")

  def body(loop):
    index = tf.gather(batches, loop.step)
    batch_data = tf.gather(mini_data, index)
    batch_labels = tf.gather(mini_labels, index)
    at = loop.attended if optimizer.use_attention else loop.params
    batch_obj = problem.objective(at, batch_data, batch_labels)
    whole_data_obj = lambda: problem.objective(loop.params, objective_data,
                                               objective_labels)
    if optimizer.obj_train_max_multiplier > 0:
      full_obj = whole_data_obj()
    else:
      full_obj = tf.cond(
          tf.logical_or(record_objectives, tf.equal(loop.step, num_iter - 1)),
          whole_data_obj, lambda: tf.identity(batch_obj))
    grads = problem.gradients(batch_obj, at)
    if optimizee_regularizer_weight is not None:
      batch_obj += optimizee_regularizer_weight * regularizer_fn(batch_obj, at)
      grads = tf.gradients(batch_obj, at)
    if not optimizer.use_second_derivatives:
      grads = [_stop_gradient(g) for g in grads]
    regularizer = loop.regularizer
    if meta_regularizer_weight is not None:
      regularizer = tf.reshape(regularizer + tf.cond(
          regularizer_on,
          lambda: meta_regularizer_weight * regularizer_fn(batch_obj, at),
          lambda: tf.constant(0.)), [])

    steps, attended, new_states, new_global = optimizer.compute_steps(
        loop.params, grads, loop.states, loop.global_state,
        differentiable=not forward_only)
    # Teacher forcing: an imitation unroll follows the teacher's steps and
    # its loss compares them with the optimizer's own.
    teacher = [tf.reshape(tf.gather(t, loop.step), shape)
               for t, shape in zip(teacher_steps, shapes)]
    new_params = [tf.where_v2(imitating, param - target, param - own)
                  for param, own, target in zip(loop.params, steps, teacher)]
    mse = tf.add_n([tf.reduce_sum(0.5 * tf.square(own - target))
                    for own, target in zip(steps, teacher)])
    mse /= float(problem.num_params)
    weight = obj_weights[loop.step]
    return [LoopState(
        step=loop.step + 1,
        objective_sum=tf.reshape(loop.objective_sum + weight * full_obj, []),
        imitation_sum=tf.reshape(loop.imitation_sum + weight * mse, []),
        params=new_params,
        attended=new_params if attended is None else list(attended),
        states=list(new_states), global_state=list(new_global),
        objectives=tf.concat([loop.objectives, tf.reshape(full_obj, [1])], 0),
        regularizer=regularizer)]

  def cond(loop):
    go_on = tf.logical_and(loop.step < num_iter,
                           tf.math.is_finite(loop.objective_sum))
    if optimizer.obj_train_max_multiplier > 0:
      limit = (initial_obj + (optimizer.obj_train_max_multiplier - 1) *
               tf.abs(initial_obj))
      go_on = tf.logical_and(go_on, loop.objectives[loop.step] < limit)
    return go_on

  loop0 = LoopState(
      step=tf.constant(0), objective_sum=tf.constant(0.),
      imitation_sum=tf.constant(0.), params=list(params0),
      attended=list(attend0), states=loop_states0,
      global_state=list(global0), objectives=tf.reshape(f_start, [1]),
      regularizer=tf.constant(0.))
  invariants = tf.nest.map_structure(lambda t: t.get_shape(), loop0)
  invariants = invariants._replace(objectives=tf.TensorShape([None]))
  [out] = tf.while_loop(cond, body, [loop0], shape_invariants=[invariants],
                        swap_memory=swap_memory, return_same_structure=True)

  states_out = [optimizer.from_loop_state(state, param)
                for state, param in zip(out.states, out.params)]
  states_out = [[state[k] for k in keys]
                for keys, state in zip(state_keys, states_out)]
  meta_objective = scale_objective(
      optimizer.config, out.objective_sum, out.objectives, initial_obj,
      ceiling=meta_loss_ceiling, weights=obj_weights) + out.regularizer
  carried_variables = ([obj_var] + param_vars + attend_vars + global_vars +
                       [v for variables in state_vars for v in variables])
  carried_values = ([initial_obj] + list(out.params) + list(out.attended) +
                    list(out.global_state) +
                    [v for values in states_out for v in values])
  start_values = ([initial_obj] + list(params0) + list(attend0) +
                  list(global0) + [v for values in state_starts
                                   for v in values])
  return UnrollOutput(
      meta_objective=meta_objective, imitation_loss=out.imitation_sum,
      objective_weights=obj_weights, problem_objectives=out.objectives,
      initial_objective=initial_obj, batches=batches,
      first_unroll=first_unroll, reset_state=reset_state,
      output_state=states_out, carried_variables=carried_variables,
      carried_values=carried_values, regularizer_on=regularizer_on,
      mini_data=mini_data, mini_labels=mini_labels,
      teacher_steps=teacher_steps, initial_params=init_tensors,
      imitating=imitating, record_objectives=record_objectives,
      start_values=start_values, draw_initial_state=draw_initial_state,
      objective_data=objective_data, objective_labels=objective_labels,
      state_keys=state_keys)


def scale_objective(config, total_obj, all_objs, initial_obj,
                    obj_scale_eps=1e-6, ceiling=None, weights=None):
  """The meta-objective of an unroll, normalised by the initial objective.

  Args:
    config: the optimizer's config (`use_log_objective`,
      `use_numerator_epsilon`).
    total_obj: the weighted sum of the unroll's objectives.
    all_objs: [T + 1] objectives of the unroll (start value first; fewer
      when a non-finite objective stopped the unroll early).
    initial_obj: objective at the start of the unroll sequence (F0).
    obj_scale_eps: epsilon.
    ceiling: optional bound c > 0 (a bounded meta-loss): every ratio r
      below (f / (F0 + eps), or (f + eps) / (F0 + eps) with the numerator
      epsilon) becomes min(r, c), a non-finite one c, and the steps an
      early-stopped unroll did not reach count as c.
    weights: [T] the steps' weights (needed with `ceiling`).

  Returns:
    mean log((f + eps) / (F0 + eps)) with log objective and numerator
    epsilon; mean log(f / (F0 + eps) + eps) with log objective only;
    total_obj / (F0 + eps) otherwise (with `ceiling`: sum_t weights[t]
    r_{t+1}, the ratios bounded as above).
  """
  if ceiling:
    return _bounded(config, all_objs, initial_obj, obj_scale_eps, ceiling,
                    weights)
  if config.use_log_objective:
    if config.use_numerator_epsilon:
      ratios = (all_objs + obj_scale_eps) / (initial_obj + obj_scale_eps)
      return tf.reduce_mean(tf.math.log(ratios))
    return tf.reduce_mean(tf.math.log(
        all_objs / (initial_obj + obj_scale_eps) + obj_scale_eps))
  return total_obj / (initial_obj + obj_scale_eps)


def _bounded(config, all_objs, initial_obj, eps, ceiling, weights):
  """`scale_objective` with its ratios bounded by `ceiling`."""
  numerator = eps if (config.use_log_objective and
                      config.use_numerator_epsilon) else 0.
  ratios = (all_objs + numerator) / (initial_obj + eps)
  ratios = tf.where(tf.math.is_finite(ratios), tf.minimum(ratios, ceiling),
                    tf.fill(tf.shape(ratios), float(ceiling)))
  missing = tf.maximum(tf.shape(weights)[0] + 1 - tf.shape(ratios)[0], 0)
  ratios = tf.concat([ratios, tf.fill([missing], float(ceiling))], 0)
  if config.use_log_objective:
    if config.use_numerator_epsilon:
      return tf.reduce_mean(tf.math.log(ratios))
    return tf.reduce_mean(tf.math.log(ratios + eps))
  return tf.reduce_sum(weights * ratios[1:])


def _stop_gradient(grad):
  if isinstance(grad, tf.IndexedSlices):
    return tf.IndexedSlices(tf.stop_gradient(grad.values), grad.indices,
                            grad.dense_shape)
  return tf.stop_gradient(grad)


def _select(pred, true_values, false_values):
  """cond(pred, true_values, false_values) for lists (possibly empty)."""
  if not true_values:
    return []
  return tf.cond(pred, lambda: list(true_values), lambda: list(false_values),
                 strict=True)


def create_local_state_variable_name(tensor):
  """"local_state_<dims joined by _>_<dtype>", e.g. local_state_784_100_float32.

  Raises:
    ValueError: the tensor's static shape is not fully defined.
  """
  shape = tensor.get_shape()
  if not shape.is_fully_defined():
    raise ValueError("local state needs a fully defined shape, got %s for %s" %
                     (shape, tensor.name))
  dims = "_".join(str(d) for d in shape.as_list())
  return "%s%s_%s" % (_LOCAL_VARIABLE_PREFIX, dims,
                      tensor.dtype.base_dtype.name)


def local_state_variables(init_values, return_init_values):
  """Local variables carrying values between partial unrolls.

  For each initial value a zero-initialised, non-trainable variable in
  LOCAL_VARIABLES under scope "LOL" is created, named
  "local_state_<shape>_<dtype>_<k>" with k counting earlier uses of that
  name in the graph.

  Args:
    init_values: list of tensors with fully defined shapes.
    return_init_values: bool tensor.

  Returns:
    (variables, values): values = init_values if `return_init_values`, else
    the variables' current values.
  """
  if not init_values:
    return [], []
  counts = _LOCAL_STATE_NAME_COUNTS.setdefault(tf.get_default_graph(),
                                               collections.defaultdict(int))
  variables = []
  with tf.variable_scope(OPTIMIZER_SCOPE):
    for value in init_values:
      base = create_local_state_variable_name(value)
      name = "%s_%d" % (base, counts[base])
      counts[base] += 1
      variables.append(tf.get_variable(
          name, shape=value.get_shape(), dtype=value.dtype.base_dtype,
          initializer=tf.zeros_initializer(), trainable=False,
          collections=[tf.GraphKeys.LOCAL_VARIABLES]))
  values = _select(return_init_values, list(init_values),
                   [tf.identity(v) for v in variables])
  return variables, values


def is_local_state_variable(op):
  """Whether `op` is a partial-unroll local state variable."""
  return (op.type in ("Variable", "VariableV2", "VarHandleOp") and
          op.name.startswith(OPTIMIZER_SCOPE + "/" + _LOCAL_VARIABLE_PREFIX))
