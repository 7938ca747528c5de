"""HierarchicalRNN: the learned optimizer of Wichrowska et al. (2017).

Three levels of GRU-style RNNs (BiasGRUCell):
  level 0, one instance per parameter coordinate, emits the update direction,
    the learning-rate change and the decay rates of the gradient statistics;
  level 1, one instance per parameter tensor, sees the mean of its
    coordinates' new states and features;
  level 2, one global instance, sees the tensors' level-1 states.
Higher levels only feed biases downward: level 0's gates receive an affine
map of the old level-1 and level-2 states, level 1's an affine map of the old
level-2 state.

This module holds construction, state and the apply / meta-training glue;
the maths of a step is `optimizer/hrnn_step.py`, shared by both modes.

Variable names and shapes follow the original, so its checkpoints load (see
docs/reference/checkpoint_variables.md). Unlike the original, every
meta-variable is created in the constructor, not lazily inside the first
while-loop body.
"""

import numpy as np
import tensorflow.compat.v1 as tf

from optimizer import configs
from optimizer import hrnn_step
from optimizer import rnn_cells
from optimizer import trainable_optimizer as opt
from optimizer import utils

MIN_LOG_LR = -33.0
_PACKED_SLOT = "packed"


class HierarchicalRNN(opt.TrainableOptimizer):
  """The hierarchical RNN optimizer (optimizer name "hRNN")."""

  META_PARAMETER_GROUPS = (
      # The learned initial hidden states of the three levels.
      ("rnn_initial_states", r"Level\d_RNN/init_vector$"),
      # Per-coordinate GRU and the projections of the upper levels into it.
      ("level0_rnn", r"PerTensor/Layer0_RNN/"),
      ("level1_rnn", r"PerTensor/Layer1_RNN/"),
      ("level2_rnn", r"Layer2_RNN/"),
      # Step direction: the update readout and the gradient shortcut.
      ("update_readout",
       r"(update_weights|attention_weights|PerTensor/GradsTo(Attn)?Delta/)"),
      # Step size: the learning-rate readout and its momentum and offset.
      ("learning_rate_readout",
       r"(learning_rate_weights|learning_rate_bias|"
       r"PerTensor/learning_rate_momentum_logit|"
       r"PerTensor/param_stepsize_offset)$"),
      # Decays of the gradient scales and of the level-0 inputs.
      ("decay_readouts", r"(scl|inp)_decay_(weights|bias)$"),
  )

  min_log_lr = MIN_LOG_LR

  def __init__(self, level_sizes, init_lr_range=(1e-6, 1e-2),
               learnable_decay=True, dynamic_output_scale=True,
               use_attention=False, use_log_objective=True,
               num_gradient_scales=4, zero_init_lr_weights=True,
               use_log_means_squared=True, use_relative_lr=True,
               use_extreme_indicator=False, max_log_lr=33,
               obj_train_max_multiplier=-1, use_problem_lr_mean=False,
               use_gradient_shortcut=False, use_lr_shortcut=False,
               use_grad_products=False, use_multiple_scale_decays=False,
               learnable_inp_decay=True, learnable_rnn_init=True,
               random_seed=None, biasgrucell_scale=0.5,
               biasgrucell_gate_bias_init=2.2, hrnn_rnn_readout_scale=0.5,
               hrnn_default_decay_var_init=2.2, scale_decay_bias_init=3.2,
               learning_rate_momentum_logit_init=3.2, hrnn_affine_scale=0.5,
               global_rnn_sees_all_tensors=False, use_second_derivatives=True,
               use_numerator_epsilon=False, xla_apply=True):
    """Creates the optimizer and all its meta-variables under scope "LOL".

    Args:
      level_sizes: 1 to 3 ints [H0, H1, H2]: per-coordinate, per-tensor and
        global RNN sizes (the original's entry points use [10, 20, 20]).
      init_lr_range: (min, max) initial per-coordinate learning rates.
      learnable_decay: learn the RMS scale decay (else constant 0.93).
      dynamic_output_scale: learn per-coordinate log learning rates and
        RMS-normalise the direction (else the step multiplier is 1).
      use_attention: evaluate gradients at a separate attended location.
      use_log_objective: log meta-objective (see TrainableOptimizer).
      num_gradient_scales: S, the number of gradient-averaging timescales.
      zero_init_lr_weights: zero-initialise the learning-rate readout.
      use_log_means_squared: add centred log mean-square features.
      use_relative_lr: add the log learning rate relative to its mean
        (needs dynamic_output_scale).
      use_extreme_indicator: add the extreme-learning-rate indicator (needs
        dynamic_output_scale).
      max_log_lr: upper clip of the log learning rate (the lower is -33).
      obj_train_max_multiplier: see TrainableOptimizer.
      use_problem_lr_mean: relative learning rate against the mean over the
        whole problem instead of the tensor.
      use_gradient_shortcut: add a learned linear map of the scaled gradients
        to the direction.
      use_lr_shortcut: add the feature log_lr - log(1e-3).
      use_grad_products: add products of adjacent-timescale gradients.
      use_multiple_scale_decays: each timescale gets its own scale decay.
      learnable_inp_decay: learn the input decay (else constant 0.89).
      learnable_rnn_init: RNN initial states are variables (else fresh
        uniform draws whenever state is reset).
      random_seed: base seed of the initializers; variable k uses seed + k
        (the original gave every initializer the same seed).
      biasgrucell_scale: BiasGRUCell weight scale (std scale/sqrt(fan_in)).
      biasgrucell_gate_bias_init: initial gate bias of the BiasGRUCells.
      hrnn_rnn_readout_scale: readout std = value / sqrt(H0).
      hrnn_default_decay_var_init: initial input-decay bias.
      scale_decay_bias_init: initial scale-decay bias.
      learning_rate_momentum_logit_init: initial learning-rate momentum logit.
      hrnn_affine_scale: scale of the inter-level bias affine maps.
      global_rnn_sees_all_tensors: feed the global RNN the mean of all
        tensors' level-1 states. The original (default False) feeds it only
        the last tensor's; published checkpoints were trained that way.
      use_second_derivatives: see TrainableOptimizer.
      use_numerator_epsilon: see TrainableOptimizer.
      xla_apply: in apply mode, compile the step with XLA (fused kernels
        over column chunks; it compiles on the step's first run). Results
        agree with `xla_apply=False` to float32 rounding.

    The settings are kept as `self.config` (a `configs.HRNNConfig`) and, one
    attribute each, on the optimizer.

    Raises:
      ValueError: bad level_sizes or init_lr_range, or a relative-LR /
        extreme-indicator feature without dynamic_output_scale.
    """
    arguments = dict(locals())
    if len(level_sizes) not in (1, 2, 3):
      raise ValueError("level_sizes must have 1, 2 or 3 entries, got %r" %
                       (level_sizes,))
    if not all(isinstance(size, int) and not isinstance(size, bool)
               for size in level_sizes):
      raise ValueError("level_sizes must be ints, got %r" % (level_sizes,))
    if len(init_lr_range) != 2:
      raise ValueError("init_lr_range must be (min, max), got %r" %
                       (init_lr_range,))
    if init_lr_range[0] > init_lr_range[1]:
      raise ValueError("init_lr_range min %g exceeds max %g" %
                       tuple(init_lr_range))
    if (use_relative_lr or use_extreme_indicator) and not dynamic_output_scale:
      raise ValueError("use_relative_lr and use_extreme_indicator need "
                       "dynamic_output_scale")
    config = configs.from_arguments(
        configs.HRNNConfig, dict(arguments, level_sizes=tuple(level_sizes),
                                 init_lr_range=tuple(init_lr_range)))
    state_keys = ["parameter", "layer", "scl_decay", "inp_decay", "true_param"]
    if dynamic_output_scale:
      state_keys.append("log_learning_rate")
    for i in range(num_gradient_scales):
      state_keys += ["grad_accum%d" % (i + 1), "ms%d" % (i + 1)]
    if len(level_sizes) == 1:
      state_keys.remove("layer")
    super().__init__("hRNN", state_keys, config=config)
    self.level_sizes = list(level_sizes)
    self.num_layers = len(level_sizes)
    self._num_seeds = 0

    with tf.variable_scope(opt.OPTIMIZER_SCOPE):
      self._create_readouts()
      self.cells = [rnn_cells.BiasGRUCell(
          size, scale=self.biasgrucell_scale,
          gate_bias_init=self.biasgrucell_gate_bias_init,
          random_seed=self._next_seed()) for size in self.level_sizes]
      self._create_rnn_variables()

  # --- Construction -----------------------------------------------------------

  def _next_seed(self):
    """A distinct seed per initializer (None without random_seed)."""
    if self.random_seed is None:
      return None
    self._num_seeds += 1
    return self.random_seed + self._num_seeds - 1

  def _create_readouts(self):
    h0 = self.level_sizes[0]
    s = self.num_gradient_scales

    def readout_init():
      return tf.random_normal_initializer(
          stddev=self.hrnn_rnn_readout_scale / np.sqrt(h0),
          seed=self._next_seed())

    self.init_vectors = []
    for i, size in enumerate(self.level_sizes):
      if self.learnable_rnn_init:
        with tf.variable_scope("Level%d_RNN" % i):
          self.init_vectors.append(tf.get_variable(
              "init_vector", [1, size],
              initializer=tf.random_uniform_initializer(
                  -1., 1., seed=self._next_seed())))
      else:
        self.init_vectors.append(tf.random.uniform(
            [1, size], -1., 1., seed=self._next_seed()))

    self.update_weights = tf.get_variable("update_weights", [h0, 1],
                                          initializer=readout_init())
    if self.use_attention:
      self.attention_weights = tf.get_variable(
          "attention_weights",
          initializer=self.update_weights.initial_value)

    if self.learnable_decay:
      self.scl_decay_weights = tf.get_variable("scl_decay_weights", [h0, 1],
                                               initializer=readout_init())
      self.scl_decay_bias = tf.get_variable(
          "scl_decay_bias", [1],
          initializer=tf.constant_initializer(self.scale_decay_bias_init))
    else:
      self.scl_decay_weights = tf.zeros([h0, 1])
      self.scl_decay_bias = tf.constant(np.log(0.93 / 0.07), tf.float32)

    if self.learnable_decay and s > 1 and self.learnable_inp_decay:
      self.inp_decay_weights = tf.get_variable("inp_decay_weights", [h0, 1],
                                               initializer=readout_init())
      self.inp_decay_bias = tf.get_variable(
          "inp_decay_bias", [1],
          initializer=tf.constant_initializer(
              self.hrnn_default_decay_var_init))
    else:
      self.inp_decay_weights = tf.zeros([h0, 1])
      self.inp_decay_bias = tf.constant(np.log(0.89 / 0.11), tf.float32)

    if self.dynamic_output_scale:
      lr_init = (tf.zeros_initializer() if self.zero_init_lr_weights
                 else readout_init())
      self.lr_weights = tf.get_variable("learning_rate_weights", [h0, 1],
                                        initializer=lr_init)
      self.lr_bias = tf.get_variable("learning_rate_bias", [1],
                                     initializer=tf.zeros_initializer())
    else:
      self.lr_weights = tf.zeros([h0, 1])
      self.lr_bias = tf.zeros([1, 1])

  @property
  def num_features(self):
    """D, the width of the per-coordinate input features."""
    s = self.num_gradient_scales
    size = s
    if s > 1 and self.use_grad_products:
      size += s - 1
    if self.use_log_means_squared:
      size += s
    size += int(self.use_relative_lr) + int(self.use_extreme_indicator)
    size += int(self.use_lr_shortcut)
    return size

  @property
  def uses_additional_features(self):
    """Whether level 1 also sees the mean features (more than the scaled
    gradients)."""
    return self.num_features > self.num_gradient_scales

  def _create_rnn_variables(self):
    """The variables the original created lazily on the first update."""
    h = self.level_sizes
    d = self.num_features
    s = self.num_gradient_scales
    with tf.variable_scope("PerTensor"):
      with tf.variable_scope("Layer0_RNN"):
        if self.num_layers >= 2:
          with tf.variable_scope("Param"):
            utils.affine_variables(h[1], 3 * h[0], scale=self.hrnn_affine_scale,
                                   random_seed=self._next_seed())
        if self.num_layers == 3:
          with tf.variable_scope("Global"):
            utils.affine_variables(h[2], 3 * h[0], scale=self.hrnn_affine_scale,
                                   random_seed=self._next_seed())
        self.cells[0].build(d)
      if self.num_layers >= 2:
        with tf.variable_scope("Layer1_RNN"):
          if self.num_layers == 3:
            utils.affine_variables(h[2], 3 * h[1], scale=self.hrnn_affine_scale,
                                   random_seed=self._next_seed())
          self.cells[1].build(h[0] + d if self.uses_additional_features
                              else h[0])
      if self.use_gradient_shortcut:
        utils.affine_variables(s, 1, scope="GradsToDelta", vec_mean=1. / s,
                               include_bias=False,
                               random_seed=self._next_seed())
        if self.use_attention:
          utils.affine_variables(s, 1, scope="GradsToAttnDelta",
                                 vec_mean=1. / s, include_bias=False,
                                 random_seed=self._next_seed())
      if self.dynamic_output_scale:
        tf.get_variable("learning_rate_momentum_logit", [],
                        initializer=tf.constant_initializer(
                            self.learning_rate_momentum_logit_init))
        tf.get_variable("param_stepsize_offset", [],
                        initializer=tf.constant_initializer(-1.0))
    if self.num_layers == 3:
      with tf.variable_scope("Layer2_RNN"):
        self.cells[2].build(h[1])

  # --- State ------------------------------------------------------------------

  def _initialize_state(self, var):
    n = int(np.prod(var.get_shape().as_list()))
    state = {
        "parameter": tf.ones([n, 1]) * self.meta(self.init_vectors[0]),
        "scl_decay": tf.zeros([n, 1]),
        "inp_decay": tf.zeros([n, 1]),
        "true_param": tf.convert_to_tensor(var),
    }
    if self.num_layers > 1:
      state["layer"] = tf.ones([1, 1]) * self.meta(self.init_vectors[1])
    if self.dynamic_output_scale:
      state["log_learning_rate"] = self._initial_log_lr(n)
    for i in range(self.num_gradient_scales):
      state["grad_accum%d" % (i + 1)] = tf.zeros([n, 1])
      state["ms%d" % (i + 1)] = tf.zeros([n, 1])
    return state

  def _initial_log_lr(self, n):
    min_lr, max_lr = self.init_lr_range
    if min_lr == max_lr:
      return tf.fill([n, 1], float(np.log(min_lr)))
    low, high = np.log(min_lr) / 2., np.log(max_lr) / 2.
    per_coordinate = tf.random.uniform([n, 1], low, high,
                                       seed=self._next_seed())
    per_tensor = tf.random.uniform([], low, high, seed=self._next_seed())
    return tf.clip_by_value(per_coordinate + per_tensor, MIN_LOG_LR,
                            self.max_log_lr)

  def _initialize_global_state(self):
    if self.num_layers < 3:
      return []
    return [tf.ones([1, 1]) * self.meta(self.init_vectors[2])]

  def _restart_state(self, state, param):
    state = dict(state)
    state["true_param"] = param
    return state

  # --- The step ---------------------------------------------------------------

  def _loop_state(self, state, param):
    """A tensor's state as {"packed": [k, n], "layer": [1, H1]}.

    The true parameters are not carried: in meta-training they are the
    loop's parameters.
    """
    del param
    loop = {_PACKED_SLOT: hrnn_step.pack_state(self, state)}
    if self.num_layers > 1:
      loop["layer"] = state["layer"]
    return loop

  def _output_state(self, loop_state, param):
    state = hrnn_step.unpack_state(self, loop_state[_PACKED_SLOT])
    state["true_param"] = param
    if self.num_layers > 1:
      state["layer"] = loop_state["layer"]
    return state

  def _compute_updates(self, params, grads, states, global_state):
    """One step of the hierarchy for all tensors; see TrainableOptimizer."""
    return self._step(params, grads, states, global_state, first=None,
                      xla=False, differentiable=True)

  def _forward_updates(self, params, grads, states, global_state):
    """The apply-mode form of the step (compiled with `xla_apply`)."""
    return self._step(params, grads, states, global_state, first=None,
                      xla=self.xla_apply, differentiable=False)

  def _step(self, params, grads, states, global_state, first, xla,
            differentiable):
    """`hrnn_step.step` on states in the `_loop_state` form.

    Args:
      params: the true parameters (the attended location starts from them).
      grads, states, global_state: as in `_compute_updates`.
      first, xla, differentiable: as in `hrnn_step.step`.

    Returns:
      As `_compute_updates`.
    """
    result = hrnn_step.step(
        self, [p.get_shape() for p in params], grads,
        [state[_PACKED_SLOT] for state in states],
        [state.get("layer") for state in states],
        global_state[0] if global_state else None, first=first, xla=xla,
        differentiable=differentiable)
    attended = None
    if self.use_attention:
      attended = [param - attend_step for param, attend_step in
                  zip(params, result.attend_steps)]
    new_states = []
    for packed, layer in zip(result.states, result.layers):
      new_states.append({_PACKED_SLOT: packed})
      if self.num_layers > 1:
        new_states[-1]["layer"] = layer
    new_global = [] if result.global_state is None else [result.global_state]
    return result.steps, attended, new_states, new_global

  # --- Apply mode -------------------------------------------------------------

  def apply_gradients(self, grads_and_vars, global_step=None, name=None):
    """Updates the variables of `grads_and_vars` with one hierarchical step.

    All tensors are updated together (the per-tensor and global levels mix
    information across them). Returns a single op, like any tf.compat.v1
    optimizer; with attention the variables hold the attended location and
    the true parameters are the "true_param" slots.

    Raises:
      TypeError: a gradient or variable of the wrong type.
      ValueError: no variable has a gradient.
    """
    grads_and_vars = list(grads_and_vars)
    for grad, var in grads_and_vars:
      if grad is not None and not isinstance(
          grad, (tf.Tensor, tf.IndexedSlices)):
        raise TypeError("gradient must be a Tensor, IndexedSlices or None: %r"
                        % (grad,))
      if not isinstance(var, tf.compat.v2.Variable):
        raise TypeError("not a tf.Variable: %r" % (var,))
    pairs = [(g, v) for g, v in grads_and_vars if g is not None]
    if not pairs:
      raise ValueError("no gradients for any variable in %s" %
                       ([v.name for _, v in grads_and_vars],))
    grads, var_list = zip(*pairs)
    self._assert_valid_dtypes([tf.convert_to_tensor(v) for v in var_list])
    with tf.control_dependencies(None):
      self._create_slots(var_list)
    with tf.name_scope(name, self._name):
      global_state, write_global = self._read_global_state()
      states = [self._read_state(var) for var in var_list]
      params = [state["true_param"] if self.use_attention
                else tf.convert_to_tensor(var)
                for state, var in zip(states, var_list)]
      fresh = [1. - self.get_slot(var, opt.STARTED_SLOT) for var in var_list]
      steps, attended, new_states, new_global = self._step(
          params, list(grads), states, global_state, first=fresh,
          xla=self.xla_apply, differentiable=False)
      new_params = [param - step for param, step in zip(params, steps)]
      if self.use_attention:
        for state, new_param in zip(new_states, new_params):
          state["true_param"] = new_param
      targets = new_params if attended is None else attended
      # Every read happens before any write.
      with tf.control_dependencies(
          tf.nest.flatten([targets, new_states, new_global])):
        writes = write_global(new_global)
        for var, new_state in zip(var_list, new_states):
          writes += self._write_state(var, new_state)
      with tf.control_dependencies(writes):
        updates = [tf.assign(var, value).op
                   for var, value in zip(var_list, targets)]
      update = tf.group(*updates)
      if global_step is None:
        return update
      with tf.control_dependencies([update]):
        return tf.assign_add(global_step, 1).op

  def _slot_initial_values(self, var):
    """The `_loop_state` form, plus the true parameters with attention."""
    initial = self._initialize_state(var)
    slots = self._loop_state(initial, var)
    if self.use_attention:
      slots["true_param"] = initial["true_param"]
    return slots

  def variable_state(self, var):
    """The apply-mode state of `var` after its last step.

    Returns:
      A dict state key -> tensor, per-coordinate entries [n, c] (as in
      meta-training's `output_state`), "layer" [1, H1] with two or more
      levels and "true_param" with attention; empty before `apply_gradients`
      has made the slots. Before the first step the values are the slots'
      zeros.
    """
    if self.get_slot(var, _PACKED_SLOT) is None:
      return {}
    slots = {key: tf.convert_to_tensor(self.get_slot(var, key))
             for key in self._slot_keys(var)}
    state = hrnn_step.unpack_state(self, slots.pop(_PACKED_SLOT))
    state.update(slots)
    return state

  def _read_global_state(self):
    """The apply-mode global RNN state and a function writing its update."""
    if self.num_layers < 3:
      return [], lambda new_global: []
    with tf.control_dependencies(None):
      with tf.variable_scope(self._name, reuse=tf.AUTO_REUSE):
        variable = tf.get_variable(
            "global_state", [1, self.level_sizes[2]], trainable=False,
            initializer=tf.zeros_initializer())
        started = tf.get_variable("global_state_started", [], trainable=False,
                                  initializer=tf.zeros_initializer())
    value = tf.cond(started > 0., lambda: tf.identity(variable),
                    lambda: self._initialize_global_state()[0])

    def write(new_global):
      return [tf.assign(variable, new_global[0]), tf.assign(started, 1.)]

    return [value], write
