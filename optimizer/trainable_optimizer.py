"""The base class of the learned optimizers: apply mode and meta-training mode.

A `TrainableOptimizer` is a `tf.compat.v1.train.Optimizer` whose update rule
has meta-parameters (variables under the "LOL" scope). It works in two modes:

* apply mode: `minimize()` / `apply_gradients()` update a user's variables,
  keeping the optimizer state in slots (one per state entry per variable);
* meta-training mode: `train(problem)` builds a differentiable, partially
  unrolled optimisation of a problem in a `tf.while_loop` and returns a
  `TrainingOutput` whose meta-objective the meta-trainer minimises.

Subclasses define `_initialize_state(var)` (dict of per-tensor state),
optionally `_initialize_global_state()`, and `_compute_update(param, grad,
state)`; optimizers that mix information across tensors override
`_compute_updates` (and may carry their state through `train()`'s loop in
another layout: `_loop_state` / `_output_state`). Settings are frozen
config objects (optimizer/configs.py), exposed as `optimizer.config`.
"""

import collections
import dataclasses
import weakref

import tensorflow.compat.v1 as tf

from optimizer import configs as optimizer_configs

OPTIMIZER_SCOPE = "LOL"
_LOCAL_VARIABLE_PREFIX = "local_state_"
# Per graph: local state variable base name -> number of uses. (The original
# kept this dict in a graph collection, which breaks MetaGraph export.)
_LOCAL_STATE_NAME_COUNTS = weakref.WeakKeyDictionary()
STARTED_SLOT = "started"

TrainingOutput = collections.namedtuple("TrainingOutput", [
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
])

# What `train()`'s while loop carries from one inner step to the next.
LoopState = collections.namedtuple("LoopState", [
    "step",            # inner step index t
    "objective_sum",   # sum of obj_weights[t] * objective_t so far
    "imitation_sum",   # sum of obj_weights[t] * imitation MSE_t so far
    "params",          # per tensor, the optimizee's (true) parameters
    "attended",        # per tensor, where the next gradients are taken
    "states",          # per tensor, the state in the `_loop_state` form
    "global_state",    # list of problem-level state tensors
    "objectives",      # [t + 1]: F_start, F_0, ..., F_{t-1}
    "regularizer",     # accumulated meta-regulariser term
])


class TrainableOptimizer(tf.train.Optimizer):
  """Base class of the learned optimizers."""

  # Named groups of the meta-parameters: (name, regular expression matched
  # at the start of a variable's name below "LOL/"); the first match
  # decides. Empty: each variable's first name component is its group.
  # optimizer/provenance.py reports how far each group moved.
  META_PARAMETER_GROUPS = ()

  def __init__(self, name, state_keys, config=None, **kwargs):
    """Creates the optimizer.

    Args:
      name: optimizer name; slot variables are named "<var>/<name>_<key>".
      state_keys: names of the per-tensor state entries (kept sorted).
      config: the subclass's config (a `configs.TrainableOptimizerConfig`
        subclass); without it one is made from `kwargs`. Every field becomes
        an attribute of the optimizer.
      **kwargs: `configs.TrainableOptimizerConfig` fields: use_attention
        (compute gradients at a separate "attended" location),
        use_log_objective (the meta-objective is the mean log of the scaled
        objectives, see `scale_objective`), obj_train_max_multiplier (if
        > 0, an unroll stops once the objective exceeds initial + (m - 1)
        |initial|), use_second_derivatives (if False, the problem's
        gradients enter the optimizer through stop_gradient),
        use_numerator_epsilon (where epsilon goes in the log objective).

    Raises:
      TypeError: an unknown keyword argument (named in the message).
    """
    if config is None:
      config = optimizer_configs.TrainableOptimizerConfig(**kwargs)
    elif kwargs:
      raise TypeError("unexpected arguments %s next to a config" %
                      ", ".join(sorted(kwargs)))
    self.config = config
    for field in dataclasses.fields(config):
      setattr(self, field.name, getattr(config, field.name))
    self.state_keys = sorted(state_keys)
    super().__init__(use_locking=False, name=name)

  # --- Hooks for subclasses -------------------------------------------------

  def _initialize_state(self, var):
    """Dict state key -> initial tensor for one parameter tensor."""
    del var
    return {}

  def _initialize_global_state(self):
    """List of initial problem-level state tensors."""
    return []

  def _restart_state(self, state, param):
    """The carried state of a tensor when its optimizee restarts at `param`.

    Called for unrolls that restart the optimizee but keep the optimizer's
    state; subclasses reset entries that mirror the parameters.
    """
    del param
    return state

  def _slot_initial_values(self, var):
    """Dict slot key -> initial value of `var`'s apply-mode slots.

    The default keeps one slot per state entry; subclasses may store the
    state in another layout.
    """
    return self._initialize_state(var)

  def _loop_state(self, state, param):
    """The form in which `train()`'s loop carries one tensor's state.

    Args:
      state: the tensor's state dict (keys `state_keys`).
      param: the tensor's parameters at the start of the unroll.

    Returns:
      A dict of tensors that `_compute_updates` accepts and returns inside
      the loop and `_output_state` maps back. The default carries the state
      as it is; a subclass may carry a layout that is cheaper to update.
    """
    del param
    return state

  def _output_state(self, loop_state, param):
    """The inverse of `_loop_state`, given the tensor's current parameters."""
    del param
    return loop_state

  def _compute_update(self, param, grad, state):
    """Returns (new_param, new_state dict) for one tensor."""
    raise NotImplementedError

  def _compute_updates(self, params, grads, states, global_state):
    """One step of every tensor; the default applies `_compute_update`.

    Args:
      params: list of parameter tensors (the true parameters, not an
        attended location).
      grads: list of gradients (tensors or IndexedSlices), same shapes.
      states: list of state dicts (in the `_loop_state` form).
      global_state: list of problem-level state tensors.

    Returns:
      (steps, attended, new_states, new_global_state): the optimizer's own
      steps (new parameter = parameter - step), shaped like the parameters;
      the positions at which the next gradients are taken, or None for the
      new parameters themselves; the new states and global state.
    """
    steps, new_states = [], []
    for param, grad, state in zip(params, grads, states):
      new_param, new_state = self._compute_update(param, grad, state)
      steps.append(param - new_param)
      new_states.append(new_state)
    return steps, None, new_states, global_state

  def _forward_updates(self, params, grads, states, global_state):
    """`_compute_updates` for a loop that is never differentiated.

    Subclasses may override it with a faster form of the same step (e.g.
    compiled, or without the exact-derivative forms); the values must agree
    with `_compute_updates` to float32 rounding.
    """
    return self._compute_updates(params, grads, states, global_state)

  # --- Apply mode -----------------------------------------------------------

  def _create_slots(self, var_list):
    """One zero-initialised slot per state entry, plus a "started" flag.

    The slots' initial values are never read: the first step of each
    variable computes its state from `_initialize_state` at that moment (see
    `_read_state`), so restoring meta-parameters before or after running the
    initializers gives the same first step.
    """
    for var in var_list:
      with tf.name_scope("slot_shapes"):
        initial = self._slot_initial_values(var)
      for key in sorted(initial):
        value = initial[key]
        self._get_or_make_slot_with_initializer(
            var, tf.zeros_initializer(), value.get_shape(),
            value.dtype.base_dtype, key, self._name + "_" + key)
      self._get_or_make_slot_with_initializer(
          var, tf.zeros_initializer(), tf.TensorShape([]), tf.float32,
          STARTED_SLOT, self._name + "_" + STARTED_SLOT)

  def _read_state(self, var):
    """The state of `var` for this step: its slots, or fresh before step 1."""
    keys = self._slot_keys(var)
    if not keys:
      return {}
    slots = [self.get_slot(var, key) for key in keys]
    started = self.get_slot(var, STARTED_SLOT)

    def fresh():
      initial = self._slot_initial_values(tf.convert_to_tensor(var))
      return [initial[key] for key in keys]

    values = tf.cond(started > 0., lambda: [tf.identity(s) for s in slots],
                     fresh, strict=True)
    return dict(zip(keys, values))

  def _slot_keys(self, var):
    return sorted(k for k in self._slots if k != STARTED_SLOT and
                  self.get_slot(var, k) is not None)

  def _write_state(self, var, new_state):
    """Assign ops for the state slots of `var` and its "started" flag."""
    ops = [tf.assign(self.get_slot(var, key), new_state[key])
           for key in self._slot_keys(var)]
    ops.append(tf.assign(self.get_slot(var, STARTED_SLOT), 1.))
    return ops

  def _apply_common(self, grad, var):
    state = self._read_state(var)
    new_var, new_state = self._compute_update(tf.convert_to_tensor(var), grad,
                                              state)
    # Every read of the state feeds the new values: computing them first
    # orders all reads before any write (reads of reference variables alias
    # their buffers, and "started" must be read before it is set).
    with tf.control_dependencies([new_var] + flatten_and_sort(new_state)):
      writes = self._write_state(var, new_state)
    with tf.control_dependencies(writes):
      return tf.assign(var, new_var).op

  def true_parameters(self, var_list):
    """The parameters the optimizer is at, one tensor per variable.

    With attention the variables hold the attended location (where gradients
    are taken) and the parameters live in the "true_param" state; before the
    first step, and without attention, they are the variables themselves.
    Call after `apply_gradients` has created the slots.
    """
    if not (self.use_attention and "true_param" in self.state_keys):
      return [tf.convert_to_tensor(v) for v in var_list]
    result = []
    for var in var_list:
      slot = self.get_slot(var, "true_param")
      if slot is None:
        result.append(tf.convert_to_tensor(var))
        continue
      started = self.get_slot(var, STARTED_SLOT)
      result.append(tf.cond(started > 0., lambda s=slot: tf.identity(s),
                            lambda v=var: tf.identity(v)))
    return result

  def _apply_dense(self, grad, var):
    return self._apply_common(grad, var)

  def _apply_sparse(self, grad, var):
    return self._apply_common(grad, var)

  def _resource_apply_dense(self, grad, handle):
    return self._apply_common(grad, handle)

  def _resource_apply_sparse(self, grad, handle, indices):
    sparse = tf.IndexedSlices(grad, indices, tf.shape(handle))
    return self._apply_common(sparse, handle)

  # --- Meta-training mode ---------------------------------------------------

  def train(self, problem, regularizer_fn=None, meta_regularizer_weight=None,
            optimizee_regularizer_weight=None, swap_memory=False,
            forward_only=False):
    """Builds one partial unroll of optimizing `problem` with this optimizer.

    Each `session.run` of the outputs runs T = len(objective_weights) inner
    steps. Between runs the caller copies `carried_values` into
    `carried_variables` (local variables) so that the next unroll continues
    the trajectory; `first_unroll` restarts the optimizee from
    `initial_params`, `reset_state` restarts the optimizer state.

    Feeds (fields of the `TrainingOutput`): `objective_weights` [T];
    `initial_params` (one array per parameter); `mini_data` / `mini_labels`
    (the unroll's data, integer labels) and `batches` [T, batch_size]
    (indices into them) for data-driven problems; optionally
    `first_unroll`, `reset_state`, `regularizer_on`, `imitating` (all
    default False), `teacher_steps` (default zeros), `record_objectives`
    (default True) and `objective_data` / `objective_labels` (default: the
    mini-dataset). An imitating unroll moves the parameters by the
    teacher's steps; `imitation_loss` compares the optimizer's own steps
    with them.

    `problem_objectives` records the objective on the whole mini-dataset at
    every step, which the meta-objective needs. Fed `objective_data` and
    `objective_labels` (e.g. held-out validation samples), those objectives
    and the initial one are taken on them instead; the steps still see only
    the batches of `mini_data`. A run that only reads the
    last entry (evaluation) feeds `record_objectives` False: that objective
    is then computed at the unroll's last step only, the other steps record
    the batch objective instead (it still stops a diverging unroll), and the
    last entry is unchanged. With `obj_train_max_multiplier` > 0 the loop
    condition reads every entry, so every step records the whole objective
    whatever is fed.

    Args:
      problem: a `problem_generator.Problem` with fully defined
        `param_shapes`.
      regularizer_fn: optional function (objective, params) -> scalar, a
        curvature regulariser of the batch objective (see regularizers/).
      meta_regularizer_weight: if set (alpha), the meta-objective gains
        alpha * sum_t regularizer_t over the steps of unrolls run with
        `regularizer_on` true. When the switch is false the regulariser is not
        computed at all.
      optimizee_regularizer_weight: if set (beta), every inner step minimises
        batch_objective + beta * regularizer; its gradients are then the plain
        gradients of that sum (the problem's gradient noise is dropped, as in
        the original).
      swap_memory: `tf.while_loop`'s swap_memory.
      forward_only: the unroll is never differentiated (evaluation): its
        steps are `_forward_updates`, not `_compute_updates`. Such an unroll
        can be started anywhere by feeding `start_values` (e.g. the
        `carried_values` of another unroll of the same problem, fetched
        with no steps).

    Returns:
      A `TrainingOutput`.

    Raises:
      ValueError: a regulariser weight is given without `regularizer_fn`.
    """
    if regularizer_fn is None and (meta_regularizer_weight is not None or
                                   optimizee_regularizer_weight is not None):
      raise ValueError("a regularizer weight needs regularizer_fn")
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
    regularizer_on = tf.placeholder_with_default(False, [],
                                                 name="jacob_switch")
    imitating = tf.placeholder_with_default(False, [], name="mode_mt")
    record_objectives = tf.placeholder_with_default(
        True, [], name="record_objectives")
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
      initial = self._initialize_state(x)
      initial_values.extend(initial.values())
      keys = sorted(initial)
      variables, values = local_state_variables(
          [initial[k] for k in keys], reset_state)
      restarted = self._restart_state(dict(zip(keys, values)), param)
      values = _select(tf.logical_and(first_unroll,
                                      tf.logical_not(reset_state)),
                       [restarted[k] for k in keys], values)
      state_keys.append(keys)
      state_vars.append(variables)
      state_starts.append(values)
      loop_states0.append(self._loop_state(dict(zip(keys, values)), param))
    initial_global = self._initialize_global_state()
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
      at = loop.attended if self.use_attention else loop.params
      batch_obj = problem.objective(at, batch_data, batch_labels)
      whole_data_obj = lambda: problem.objective(loop.params, objective_data,
                                                 objective_labels)
      if self.obj_train_max_multiplier > 0:
        full_obj = whole_data_obj()
      else:
        full_obj = tf.cond(
            tf.logical_or(record_objectives,
                          tf.equal(loop.step, num_iter - 1)),
            whole_data_obj, lambda: tf.identity(batch_obj))
      grads = problem.gradients(batch_obj, at)
      if optimizee_regularizer_weight is not None:
        batch_obj += optimizee_regularizer_weight * regularizer_fn(batch_obj,
                                                                   at)
        grads = tf.gradients(batch_obj, at)
      if not self.use_second_derivatives:
        grads = [_stop_gradient(g) for g in grads]
      regularizer = loop.regularizer
      if meta_regularizer_weight is not None:
        regularizer = tf.reshape(regularizer + tf.cond(
            regularizer_on,
            lambda: meta_regularizer_weight * regularizer_fn(batch_obj, at),
            lambda: tf.constant(0.)), [])

      update = (self._forward_updates if forward_only
                else self._compute_updates)
      steps, attended, new_states, new_global = update(
          loop.params, grads, loop.states, loop.global_state)
      # Teacher forcing: an imitation unroll follows the teacher's steps and
      # its loss compares them with the optimizer's own.
      teacher = [tf.reshape(tf.gather(t, loop.step), shape)
                 for t, shape in zip(teacher_steps, shapes)]
      new_params = [tf.where_v2(imitating, param - target, param - own)
                    for param, own, target in zip(loop.params, steps,
                                                  teacher)]
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
          objectives=tf.concat([loop.objectives, tf.reshape(full_obj, [1])],
                               0),
          regularizer=regularizer)]

    def cond(loop):
      go_on = tf.logical_and(loop.step < num_iter,
                             tf.math.is_finite(loop.objective_sum))
      if self.obj_train_max_multiplier > 0:
        limit = (initial_obj + (self.obj_train_max_multiplier - 1) *
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

    states_out = [self._output_state(state, param)
                  for state, param in zip(out.states, out.params)]
    states_out = [[state[k] for k in keys]
                  for keys, state in zip(state_keys, states_out)]
    meta_objective = self.scale_objective(
        out.objective_sum, out.objectives, initial_obj) + out.regularizer
    carried_variables = ([obj_var] + param_vars + attend_vars + global_vars +
                         [v for variables in state_vars for v in variables])
    carried_values = ([initial_obj] + list(out.params) + list(out.attended) +
                      list(out.global_state) +
                      [v for values in states_out for v in values])
    start_values = ([initial_obj] + list(params0) + list(attend0) +
                    list(global0) + [v for values in state_starts
                                     for v in values])
    return TrainingOutput(
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
        objective_data=objective_data, objective_labels=objective_labels)

  def scale_objective(self, total_obj, all_objs, initial_obj,
                      obj_scale_eps=1e-6):
    """The meta-objective of an unroll, normalised by the initial objective.

    Args:
      total_obj: the weighted sum of the unroll's objectives.
      all_objs: [T + 1] objectives of the unroll (start value first).
      initial_obj: objective at the start of the unroll sequence (F0).
      obj_scale_eps: epsilon.

    Returns:
      mean log((f + eps) / (F0 + eps)) with log objective and numerator
      epsilon; mean log(f / (F0 + eps) + eps) with log objective only;
      total_obj / (F0 + eps) otherwise.
    """
    if self.use_log_objective:
      if self.use_numerator_epsilon:
        ratios = (all_objs + obj_scale_eps) / (initial_obj + obj_scale_eps)
        return tf.reduce_mean(tf.math.log(ratios))
      return tf.reduce_mean(tf.math.log(
          all_objs / (initial_obj + obj_scale_eps) + obj_scale_eps))
    return total_obj / (initial_obj + obj_scale_eps)


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


def flatten_and_sort(dictionary):
  """The values of `dictionary`, ordered by sorted key."""
  return [dictionary[k] for k in sorted(dictionary)]
