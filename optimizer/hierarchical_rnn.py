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

Variable names and shapes follow the original, so its checkpoints load (see
../shared/docs/reference/checkpoint_variables.md). Unlike the original, every
meta-variable is created in the constructor, not lazily inside the first
while-loop body.
"""

import numpy as np
import tensorflow.compat.v1 as tf

from optimizer import hrnn_packed
from optimizer import rnn_cells
from optimizer import trainable_optimizer as opt
from optimizer import utils

MIN_LOG_LR = -33.0
_PACKED_SLOT = "packed"


class HierarchicalRNN(opt.TrainableOptimizer):
  """The hierarchical RNN optimizer (optimizer name "hRNN")."""

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
               use_numerator_epsilon=False, packed_apply=True,
               xla_apply=True, packed_train=True):
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
      packed_apply: in apply mode (`minimize` / `apply_gradients`), keep
        each variable's per-coordinate state in one [k, n] slot and update
        all variables in one feature-major computation (optimizer/
        hrnn_packed.py): the same maths to float32 rounding, about 3x
        faster on CPU. False keeps one slot per state entry and runs the
        per-tensor graph. Attention always uses the per-tensor path.
      xla_apply: compile the packed step with XLA (one fused kernel; it
        compiles on the step's first run). Results agree with
        `xla_apply=False` to float32 rounding. Only with packed_apply.
      packed_train: in meta-training (`train`), carry each tensor's
        per-coordinate state through the unroll's loop in the packed layout
        and take the feature-major step (plain ops, differentiable): the
        same maths and meta-gradients to float32 rounding, faster. False
        runs the per-tensor graph. Attention always uses the per-tensor
        graph.

    Raises:
      ValueError: bad level_sizes or init_lr_range, or a relative-LR /
        extreme-indicator feature without dynamic_output_scale.
    """
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
    self.level_sizes = list(level_sizes)
    self.num_layers = len(level_sizes)
    self.init_lr_range = tuple(init_lr_range)
    self.learnable_decay = learnable_decay
    self.dynamic_output_scale = dynamic_output_scale
    self.num_gradient_scales = num_gradient_scales
    self.zero_init_lr_weights = zero_init_lr_weights
    self.use_log_means_squared = use_log_means_squared
    self.use_relative_lr = use_relative_lr
    self.use_extreme_indicator = use_extreme_indicator
    self.max_log_lr = max_log_lr
    self.use_problem_lr_mean = use_problem_lr_mean
    self.use_gradient_shortcut = use_gradient_shortcut
    self.use_lr_shortcut = use_lr_shortcut
    self.use_grad_products = use_grad_products
    self.use_multiple_scale_decays = use_multiple_scale_decays
    self.learnable_inp_decay = learnable_inp_decay
    self.learnable_rnn_init = learnable_rnn_init
    self.random_seed = random_seed
    self.biasgrucell_scale = biasgrucell_scale
    self.biasgrucell_gate_bias_init = biasgrucell_gate_bias_init
    self.hrnn_rnn_readout_scale = hrnn_rnn_readout_scale
    self.hrnn_default_decay_var_init = hrnn_default_decay_var_init
    self.scale_decay_bias_init = scale_decay_bias_init
    self.learning_rate_momentum_logit_init = learning_rate_momentum_logit_init
    self.hrnn_affine_scale = hrnn_affine_scale
    self.global_rnn_sees_all_tensors = global_rnn_sees_all_tensors
    self.packed_apply = packed_apply and not use_attention
    self.xla_apply = xla_apply
    self.packed_train = packed_train and not use_attention
    self._num_seeds = 0

    state_keys = ["parameter", "layer", "scl_decay", "inp_decay", "true_param"]
    if dynamic_output_scale:
      state_keys.append("log_learning_rate")
    for i in range(num_gradient_scales):
      state_keys += ["grad_accum%d" % (i + 1), "ms%d" % (i + 1)]
    if self.num_layers == 1:
      state_keys.remove("layer")
    super().__init__("hRNN", state_keys, use_attention=use_attention,
                     use_log_objective=use_log_objective,
                     obj_train_max_multiplier=obj_train_max_multiplier,
                     use_second_derivatives=use_second_derivatives,
                     use_numerator_epsilon=use_numerator_epsilon)

    with tf.variable_scope(opt.OPTIMIZER_SCOPE):
      self._create_readouts()
      self.cells = [rnn_cells.BiasGRUCell(
          size, scale=biasgrucell_scale,
          gate_bias_init=biasgrucell_gate_bias_init,
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
  def _uses_additional_features(self):
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
          self.cells[1].build(h[0] + d if self._uses_additional_features
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
        "parameter": tf.ones([n, 1]) * self.init_vectors[0],
        "scl_decay": tf.zeros([n, 1]),
        "inp_decay": tf.zeros([n, 1]),
        "true_param": tf.convert_to_tensor(var),
    }
    if self.num_layers > 1:
      state["layer"] = tf.ones([1, 1]) * self.init_vectors[1]
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
    return [tf.ones([1, 1]) * self.init_vectors[2]]

  def _restart_state(self, state, param):
    state = dict(state)
    state["true_param"] = param
    return state

  # --- The update -------------------------------------------------------------

  def _to_packed(self, state, keep):
    """A per-tensor state dict as {"packed": [k, n]} plus its `keep` keys."""
    packed = {_PACKED_SLOT: hrnn_packed.pack_state(self, state)}
    packed.update((key, state[key]) for key in keep if key in state)
    return packed

  def _from_packed(self, packed):
    """The inverse of `_to_packed`: a per-tensor state dict."""
    state = hrnn_packed.unpack_state(self, packed[_PACKED_SLOT])
    state.update((key, value) for key, value in packed.items()
                 if key != _PACKED_SLOT)
    return state

  def _loop_states(self, states):
    if not self.packed_train:
      return states
    return [self._to_packed(state, ("layer", "true_param"))
            for state in states]

  def _unloop_states(self, states):
    if not self.packed_train:
      return states
    return [self._from_packed(state) for state in states]

  def _compute_updates(self, params, grads, states, global_state,
                       mode_mt=None, teacher_steps=None):
    """One step of the hierarchy for all tensors; see TrainableOptimizer."""
    if states and _PACKED_SLOT in states[0]:
      return self._packed_train_updates(params, grads, states, global_state,
                                        mode_mt, teacher_steps)
    new_params, new_states, new_attend, steps, layer_states = [], [], [], [], []
    with tf.variable_scope(opt.OPTIMIZER_SCOPE, reuse=True):
      mean_log_lr = None
      if self.use_problem_lr_mean and self.use_relative_lr:
        total = tf.add_n([tf.reduce_sum(s["log_learning_rate"])
                          for s in states])
        count = sum(int(np.prod(p.get_shape().as_list())) for p in params)
        mean_log_lr = total / count
      global_h = global_state[0] if self.num_layers == 3 else None
      with tf.variable_scope("PerTensor"):
        for i, (param, grad, state) in enumerate(zip(params, grads, states)):
          teacher = None if mode_mt is None else teacher_steps[i]
          new_param, new_state, attended, step = self._update_tensor(
              param, grad, state, global_h, mean_log_lr, mode_mt, teacher)
          new_params.append(new_param)
          new_states.append(new_state)
          new_attend.append(attended)
          steps.append(step)
          if self.num_layers > 1:
            layer_states.append(new_state["layer"])
      new_global = []
      if self.num_layers == 3:
        if self.global_rnn_sees_all_tensors:
          summary = tf.reduce_mean(tf.concat(layer_states, 0), 0,
                                   keepdims=True)
        else:
          summary = layer_states[-1]
        with tf.variable_scope("Layer2_RNN"):
          new_global = [self.cells[2](summary, global_h)[1]]
    return new_params, new_states, new_global, new_attend, steps

  def _packed_train_updates(self, params, grads, states, global_state,
                            mode_mt, teacher_steps):
    """`_compute_updates` for states in `_loop_states`' packed form."""
    steps, new_packed, new_layers, new_global = hrnn_packed.packed_step(
        self, params, grads, [state[_PACKED_SLOT] for state in states],
        [state.get("layer") for state in states],
        global_state[0] if global_state else None, differentiable=True)
    new_params, new_states = [], []
    for i, (param, step, packed, layer) in enumerate(
        zip(params, steps, new_packed, new_layers)):
      new_param = param - step
      if mode_mt is not None:
        new_param = opt.teacher_forced(mode_mt, param, teacher_steps[i],
                                       new_param)
      new_params.append(new_param)
      new_states.append({_PACKED_SLOT: packed, "true_param": new_param})
      if self.num_layers > 1:
        new_states[-1]["layer"] = layer
    new_global = [new_global] if new_global is not None else []
    return new_params, new_states, new_global, list(new_params), steps

  def _features(self, grad, state, mean_log_lr):
    """Input features [n, D], scaled gradients Z [n, S] and new statistics."""
    s_count = self.num_gradient_scales
    g = tf.reshape(tf.convert_to_tensor(grad), [-1, 1])
    inp = utils.decay_timescales(state["inp_decay"], s_count)
    if self.use_multiple_scale_decays:
      scl = utils.decay_timescales(state["scl_decay"], s_count)
    else:
      scl = [state["scl_decay"]] * s_count
    accums, mss, scaled = [], [], []
    for i in range(s_count):
      if s_count == 1:
        accum = g
      else:
        accum = (1. - inp[i]) * g + inp[i] * state["grad_accum%d" % (i + 1)]
      z, ms = utils.rms_scaling(accum, scl[i], state["ms%d" % (i + 1)])
      accums.append(accum)
      mss.append(ms)
      scaled.append(z)
    features = list(scaled)
    if s_count > 1 and self.use_grad_products:
      features += [scaled[i] * scaled[i + 1] for i in range(s_count - 1)]
    if self.use_log_means_squared:
      log_ms = [tf.math.log(ms + 1e-16) for ms in mss]
      mean = tf.add_n(log_ms) / float(s_count)
      features += [m - mean for m in log_ms]
    log_lr = state.get("log_learning_rate")
    if self.use_relative_lr:
      reference = (mean_log_lr if self.use_problem_lr_mean
                   else tf.reduce_mean(log_lr))
      features.append(log_lr - reference)
    if self.use_extreme_indicator:
      features.append(tf.nn.relu(log_lr - np.log(1.)) -
                      tf.nn.relu(np.log(1e-6) - log_lr))
    if self.use_lr_shortcut:
      features.append(log_lr - np.log(1e-3))
    return tf.concat(features, 1), tf.concat(scaled, 1), accums, mss

  def _update_tensor(self, param, grad, state, global_h, mean_log_lr, mode_mt,
                     teacher):
    """Level 0 and 1 for one tensor, the readouts and the parameter step."""
    h0_size, s_count = self.level_sizes[0], self.num_gradient_scales
    x, scaled, accums, mss = self._features(grad, state, mean_log_lr)
    with tf.variable_scope("Layer0_RNN"):
      bias0 = None
      if self.num_layers >= 2:
        with tf.variable_scope("Param"):
          bias0 = utils.affine(state["layer"], 3 * h0_size)
      if self.num_layers == 3:
        with tf.variable_scope("Global"):
          bias0 += utils.affine(global_h, 3 * h0_size)
      h0 = self.cells[0](x, state["parameter"], bias0)[1]
    new_state = {"parameter": h0}
    if self.num_layers >= 2:
      with tf.variable_scope("Layer1_RNN"):
        summary = tf.concat([h0, x], 1) if self._uses_additional_features else h0
        summary = tf.reduce_mean(summary, 0, keepdims=True)
        bias1 = (utils.affine(global_h, 3 * self.level_sizes[1])
                 if self.num_layers == 3 else None)
        new_state["layer"] = self.cells[1](summary, state["layer"], bias1)[1]

    direction = self._direction(h0, scaled, self.update_weights,
                                "GradsToDelta")
    new_state["scl_decay"] = tf.sigmoid(
        utils.project(h0, self.scl_decay_weights, self.scl_decay_bias))
    new_state["inp_decay"] = tf.sigmoid(
        utils.project(h0, self.inp_decay_weights, self.inp_decay_bias))

    if self.dynamic_output_scale:
      log_lr = state["log_learning_rate"]
      log_lr_step = log_lr + utils.project(h0, self.lr_weights, self.lr_bias)
      clipped = tf.clip_by_value(log_lr_step, MIN_LOG_LR, self.max_log_lr)
      # Straight-through: clipped forward, identity gradient.
      log_lr_step += tf.stop_gradient(clipped - log_lr_step)
      momentum = tf.sigmoid(tf.get_variable("learning_rate_momentum_logit"))
      new_state["log_learning_rate"] = (momentum * log_lr +
                                        (1. - momentum) * log_lr_step)
      offset = tf.get_variable("param_stepsize_offset")
      step_size = tf.exp(log_lr_step + offset)
      attend_step_size = tf.exp(log_lr_step) if self.use_attention else None
    else:
      step_size = 2. * tf.sigmoid(
          utils.project(h0, self.lr_weights, self.lr_bias))
      attend_step_size = step_size

    shape = param.get_shape()
    update_step = tf.reshape(step_size * direction, shape)
    base = state["true_param"] if self.use_attention else param
    new_param = base - update_step
    if mode_mt is not None:
      new_param = opt.teacher_forced(mode_mt, base, teacher, new_param)
    if self.use_attention:
      attend_direction = self._direction(h0, scaled, self.attention_weights,
                                         "GradsToAttnDelta")
      attended = state["true_param"] - tf.reshape(
          attend_step_size * attend_direction, shape)
    else:
      attended = new_param
    new_state["true_param"] = new_param
    for i in range(s_count):
      new_state["grad_accum%d" % (i + 1)] = accums[i]
      new_state["ms%d" % (i + 1)] = mss[i]
    return new_param, new_state, attended, update_step

  def _direction(self, h0, scaled, weights, shortcut_scope):
    direction = tf.matmul(h0, weights)
    if self.use_gradient_shortcut:
      direction += utils.affine(scaled, 1, scope=shortcut_scope,
                                include_bias=False)
    if self.dynamic_output_scale:
      direction /= tf.sqrt(tf.reduce_mean(tf.square(direction)) + 1e-16)
    return direction

  # --- Apply mode ---------------------------------------------------------------

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
      update_state = (self._packed_update if self.packed_apply
                      else self._per_tensor_update)
      global_state, write_global = self._read_global_state()
      targets, new_states, new_global = update_state(
          var_list, list(grads), global_state)
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

  def variable_state(self, var):
    """The apply-mode state of `var` after its last step.

    Returns:
      A dict state key -> tensor, per-coordinate entries [n, c] (as in
      meta-training, whatever the slot layout), "layer" [1, H1] with two or
      more levels; empty before `apply_gradients` has made the slots. Before
      the first step the values are the slots' zeros.
    """
    if not self.packed_apply:
      return {key: tf.convert_to_tensor(self.get_slot(var, key))
              for key in self._slot_keys(var)}
    if self.get_slot(var, _PACKED_SLOT) is None:
      return {}
    return self._from_packed({key: tf.convert_to_tensor(self.get_slot(var, key))
                              for key in self._slot_keys(var)})

  def _per_tensor_update(self, var_list, grads, global_state):
    """(new variable values, new states, new global): slot per entry."""
    states = [self._read_state(var) for var in var_list]
    params = [tf.convert_to_tensor(var) for var in var_list]
    new_params, new_states, new_global, attended, _ = self._compute_updates(
        params, grads, states, global_state)
    targets = attended if self.use_attention else new_params
    return targets, new_states, new_global

  def _slot_initial_values(self, var):
    initial = self._initialize_state(var)
    if not self.packed_apply:
      return initial
    return self._to_packed(initial, ("layer",))

  def _packed_update(self, var_list, grads, global_state):
    """(new variable values, new states, new global state): packed slots."""
    states = [self._read_state(var) for var in var_list]
    params = [tf.convert_to_tensor(var) for var in var_list]
    fresh = [1. - self.get_slot(var, opt.STARTED_SLOT) for var in var_list]
    steps, new_packed, new_layers, new_global = hrnn_packed.packed_step(
        self, params, grads, [state[_PACKED_SLOT] for state in states],
        [state.get("layer") for state in states],
        global_state[0] if global_state else None, first=fresh,
        xla=self.xla_apply)
    targets = [param - step for param, step in zip(params, steps)]
    new_global = [new_global] if new_global is not None else []
    new_states = []
    for value, layer in zip(new_packed, new_layers):
      new_states.append({_PACKED_SLOT: value})
      if self.num_layers > 1:
        new_states[-1]["layer"] = layer
    return targets, new_states, new_global

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
