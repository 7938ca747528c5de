"""The base class of the learned optimizers: their step, and apply mode.

A `TrainableOptimizer` is a `tf.compat.v1.train.Optimizer` whose update rule
has meta-parameters (variables under the "LOL" scope). It says what one step
computes and how it applies in a user's model:

* apply mode: `minimize()` / `apply_gradients()` update a user's variables,
  keeping the optimizer state in slots (one per state entry per variable);
* the step interface (`initial_state`, `initial_global_state`,
  `restarted_state`, `to_loop_state`, `from_loop_state`, `compute_steps`):
  what meta-training's unroll (meta_training/unroll.py) runs, inside a
  `tf.while_loop`, on a problem's parameters.

Subclasses define `_initialize_state(var)` (dict of per-tensor state),
optionally `_initialize_global_state()`, and `_compute_update(param, grad,
state)`; optimizers that mix information across tensors override
`_compute_updates` (and may carry their state through the unroll's loop in
another layout: `_loop_state` / `_output_state`). Every read of a
meta-parameter goes through `meta()` or `reading_scope()`, so that a step
built inside `meta_parameters_at(values)` uses other values than the
variables (evolution strategies evaluate theta + sigma * epsilon this way).
Settings are frozen config objects (optimizer/configs.py), exposed as
`optimizer.config`; some of them (use_log_objective, obj_train_max_multiplier,
...) are read by the unroll.
"""

import contextlib
import dataclasses

import tensorflow.compat.v1 as tf

from optimizer import configs as optimizer_configs

OPTIMIZER_SCOPE = "LOL"
STARTED_SLOT = "started"


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
    # Inside `meta_parameters_at`: variable name -> the value read instead.
    self._meta_values = None
    super().__init__(use_locking=False, name=name)

  # --- Meta-parameter values --------------------------------------------------

  @contextlib.contextmanager
  def meta_parameters_at(self, values):
    """Steps built inside the block read `values` for the meta-parameters.

    Args:
      values: dict meta-parameter variable name (e.g. "LOL/update_weights")
        -> tensor of that variable's shape; variables not named keep
        their own value.

    Raises:
      ValueError: the blocks are nested.
    """
    if self._meta_values is not None:
      raise ValueError("meta_parameters_at blocks do not nest")
    self._meta_values = dict(values)
    try:
      yield
    finally:
      self._meta_values = None

  def meta(self, value):
    """A meta-parameter as the step reads it: `value` itself, or inside
    `meta_parameters_at` the value given for its variable."""
    if self._meta_values is None or not isinstance(value, tf.Variable):
      return value
    return self._meta_values.get(value.op.name, value)

  def reading_scope(self, scope=None):
    """A variable scope (default "LOL") whose `get_variable` reads existing
    meta-parameters through `meta`."""
    def read(getter, *args, **kwargs):
      return self.meta(getter(*args, **kwargs))
    return tf.variable_scope(scope or OPTIMIZER_SCOPE, reuse=True,
                             custom_getter=read)

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
    """The form in which the unroll's loop carries one tensor's state.

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

  # --- The step interface of meta-training's unroll --------------------------

  def initial_state(self, var):
    """Dict state key -> initial tensor for parameter tensor `var`."""
    return self._initialize_state(var)

  def initial_global_state(self):
    """List of initial problem-level state tensors."""
    return self._initialize_global_state()

  def restarted_state(self, state, param):
    """The carried state of a tensor whose optimizee restarts at `param`."""
    return self._restart_state(state, param)

  def to_loop_state(self, state, param):
    """A tensor's state in the form the unroll's loop carries."""
    return self._loop_state(state, param)

  def from_loop_state(self, loop_state, param):
    """The inverse of `to_loop_state`, given the tensor's parameters."""
    return self._output_state(loop_state, param)

  def compute_steps(self, params, grads, states, global_state,
                    differentiable=True):
    """One step of every tensor (see `_compute_updates`); with
    `differentiable` False, the step's forward form (`_forward_updates`)."""
    update = (self._compute_updates if differentiable
              else self._forward_updates)
    return update(params, grads, states, global_state)


def flatten_and_sort(dictionary):
  """The values of `dictionary`, ordered by sorted key."""
  return [dictionary[k] for k in sorted(dictionary)]
