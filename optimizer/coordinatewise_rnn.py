"""CoordinatewiseRNN: one small stacked RNN per parameter coordinate.

Every coordinate of every parameter tensor runs its own copy of the same
stacked RNN (shared weights, separate states). Its input is the gradient
divided by its running RMS and squashed with asinh; its output is read out
linearly into the update direction, the decay of the RMS statistic, and a
factor in (0, 2) that multiplies the coordinate's learning rate.

Unlike the original, this works with any cell of `rnn_cells` (the original
only worked with tuple-state cells whose two halves are equal, i.e. LSTMs),
and it creates every meta-variable in the constructor.
"""

import numpy as np
import tensorflow.compat.v1 as tf

from optimizer import configs
from optimizer import rnn_cells
from optimizer import trainable_optimizer as opt
from optimizer import utils


class CoordinatewiseRNN(opt.TrainableOptimizer):
  """The coordinatewise RNN optimizer (optimizer name "cRNN").

  Meta-parameters (scope "LOL"), with C the last cell size and W the total
  state width of the stacked cells:
    update_weights [C, 1], decay_weights [C, 1] and decay_bias [1] (if
    learnable_decay), learning_rate_weights [C, 1] and learning_rate_bias
    [1] (if dynamic_output_scale), init_vector [1, W], and the cells'
    multi_rnn_cell/cell_k/<cell scope>/{kernel, bias}.

  Per-tensor state for a tensor of n elements: `rms` [n, 1] (running mean
  square, initially 1), `decay` [n, 1] (its decay, initially 1),
  `learning_rate` [n, 1], and `rnn` [n, W] (the cells' states, packed cell
  by cell; every row starts as init_vector).

  One step, with o the stacked RNN's output [n, C]:
    rms' = decay rms + (1 - decay) (g^2 + 1e-12)
    z = asinh(g / sqrt(rms' + 1e-16))            (the RNN input)
    decay' = sigmoid(o decay_weights + decay_bias)
    lr' = 2 sigmoid(o learning_rate_weights + learning_rate_bias) lr
    theta' = theta - lr' (o update_weights)
  (rms starts at 1, so the first-step shortcut of utils.new_mean_squared
  never fires: with decay 1 the first step feeds asinh(g) to the RNN.)
  The learning rate is a multiplicative random walk, unbounded as in the
  original. Sparse gradients update only the touched rows and their
  state.
  """

  def __init__(self, cell_sizes, cell_cls, init_lr_range=(1., 1.),
               dynamic_output_scale=True, learnable_decay=True,
               zero_init_lr_weights=False, crnn_rnn_readout_scale=0.5,
               crnn_default_decay_var_init=2.2, random_seed=None, **kwargs):
    """Creates the optimizer and all its meta-variables under scope "LOL".

    Args:
      cell_sizes: list of ints, the sizes of the stacked cells.
      cell_cls: a cell class of `rnn_cells` (called as cell_cls(size)), or
        its name ("LSTMCell", "GRUCell", ...).
      init_lr_range: (min, max) initial per-coordinate learning rates; if
        they differ, each coordinate draws log-uniformly between them.
      dynamic_output_scale: learn the learning-rate factor (else the
        learning rates keep their initial values).
      learnable_decay: learn the RMS decay readout (else the decay is the
        constant sigmoid(crnn_default_decay_var_init)).
      zero_init_lr_weights: zero-initialise learning_rate_weights.
      crnn_rnn_readout_scale: readout weights start N(0, (value/sqrt(C))^2).
      crnn_default_decay_var_init: initial (or constant) decay bias.
      random_seed: base seed of the initializers; initializer k uses
        random_seed + k (the original's were unseeded). None: unseeded.
        When set, the cells are built with cell_cls(size, random_seed=...).
      **kwargs: TrainableOptimizer options (use_attention,
        use_log_objective, obj_train_max_multiplier, use_second_derivatives,
        use_numerator_epsilon).

    Raises:
      ValueError: init_lr_range is not a (min, max) pair with min <= max, or
        cell_cls names no known cell.
    """
    if len(init_lr_range) != 2:
      raise ValueError("init_lr_range must be a (min, max) pair, got %r" %
                       (init_lr_range,))
    if init_lr_range[0] > init_lr_range[1]:
      raise ValueError("init_lr_range min exceeds max: %r" %
                       (init_lr_range,))
    config = configs.CRNNConfig(
        cell_sizes=tuple(cell_sizes), cell_cls=cell_cls,
        init_lr_range=tuple(init_lr_range),
        dynamic_output_scale=dynamic_output_scale,
        learnable_decay=learnable_decay,
        zero_init_lr_weights=zero_init_lr_weights,
        crnn_rnn_readout_scale=crnn_rnn_readout_scale,
        crnn_default_decay_var_init=crnn_default_decay_var_init,
        random_seed=random_seed, **kwargs)
    if isinstance(cell_cls, str):
      cell_cls = rnn_cells.cell_class(cell_cls)
    super().__init__("cRNN", ["rms", "rnn", "learning_rate", "decay"],
                     config=config)
    self.min_lr, self.max_lr = float(init_lr_range[0]), float(init_lr_range[1])
    self.dynamic_output_scale = dynamic_output_scale
    self.learnable_decay = learnable_decay
    self.default_decay_bias = crnn_default_decay_var_init
    self.random_seed = random_seed
    self._num_seeds = 0

    self.component_cells = [self._make_cell(cell_cls, size)
                            for size in cell_sizes]
    self.cell = rnn_cells.MultiRNNCell(self.component_cells)
    self.state_widths = [rnn_cells.flat_state_size(cell)
                         for cell in self.component_cells]
    self.lr_seed = self._next_seed()
    with tf.variable_scope(opt.OPTIMIZER_SCOPE) as scope:
      self._scope = scope
      self._create_readouts(cell_sizes[-1], crnn_rnn_readout_scale,
                            zero_init_lr_weights)
      self.init_vector = tf.get_variable(
          "init_vector", [1, sum(self.state_widths)],
          initializer=tf.random_uniform_initializer(-1., 1.,
                                                    seed=self._next_seed()))
      self._run_cell(tf.zeros([1, 1]), tf.zeros([1, sum(self.state_widths)]))

  # --- Construction -----------------------------------------------------------

  def _next_seed(self):
    """A distinct seed per initializer (None without random_seed)."""
    if self.random_seed is None:
      return None
    self._num_seeds += 1
    return self.random_seed + self._num_seeds - 1

  def _make_cell(self, cell_cls, size):
    seed = self._next_seed()
    if seed is None:
      return cell_cls(size)
    return cell_cls(size, random_seed=seed)

  def _create_readouts(self, output_size, readout_scale, zero_init_lr_weights):
    """The readout variables (None for the constant ones)."""
    def readout_init():
      return tf.random_normal_initializer(
          stddev=readout_scale / np.sqrt(output_size), seed=self._next_seed())

    self.update_weights = tf.get_variable("update_weights", [output_size, 1],
                                          initializer=readout_init())
    self.decay_weights = self.decay_bias = None
    if self.learnable_decay:
      self.decay_weights = tf.get_variable("decay_weights", [output_size, 1],
                                           initializer=readout_init())
      self.decay_bias = tf.get_variable(
          "decay_bias", [1],
          initializer=tf.constant_initializer(self.default_decay_bias))
    self.lr_weights = self.lr_bias = None
    if self.dynamic_output_scale:
      lr_init = (tf.zeros_initializer() if zero_init_lr_weights
                 else readout_init())
      self.lr_weights = tf.get_variable("learning_rate_weights",
                                        [output_size, 1], initializer=lr_init)
      self.lr_bias = tf.get_variable("learning_rate_bias", [1],
                                     initializer=tf.zeros_initializer())

  # --- State ------------------------------------------------------------------

  def _initialize_state(self, var):
    n = var.get_shape().num_elements()
    return {
        "rms": tf.ones([n, 1]),
        "decay": tf.ones([n, 1]),
        "learning_rate": self._initial_learning_rate(n),
        "rnn": tf.tile(self.meta(self.init_vector), [n, 1]),
    }

  def _initial_learning_rate(self, n):
    if self.min_lr == self.max_lr:
      return tf.fill([n, 1], self.min_lr)
    log_lr = tf.random.uniform([n, 1], np.log(self.min_lr),
                               np.log(self.max_lr), seed=self.lr_seed)
    return tf.exp(log_lr)

  # --- Update -----------------------------------------------------------------

  def _run_cell(self, inputs, packed_state):
    """Runs the stacked cell on a packed [m, W] state.

    Returns:
      (output [m, C], new packed state [m, W]).
    """
    columns = tf.split(packed_state, self.state_widths, axis=1)
    states = tuple(rnn_cells.unpack_state(cell, flat)
                   for cell, flat in zip(self.component_cells, columns))
    output, new_states = self.cell(inputs, states)
    packed = [rnn_cells.pack_state(cell, state)
              for cell, state in zip(self.component_cells, new_states)]
    return output, tf.concat(packed, 1)

  def _compute_update(self, param, grad, state):
    if isinstance(grad, tf.IndexedSlices):
      return utils.sparse_row_update(param, grad, state, self._rnn_step)
    step, new_state = self._rnn_step(grad, state)
    return param - tf.reshape(step, tf.shape(param)), new_state

  def _rnn_step(self, grad, state):
    """One RNN step on the coordinates of `grad` and their state rows.

    Args:
      grad: gradient values, any shape with m elements.
      state: dict of state rows, each [m, width].

    Returns:
      (step [m, 1], new state dict); the new parameters are theta - step.
    """
    with self.reading_scope(self._scope):
      scaled, rms = utils.rms_scaling(grad, state["decay"], state["rms"])
      output, rnn = self._run_cell(scaled, state["rnn"])
    meta = self.meta
    direction = tf.matmul(output, meta(self.update_weights))
    if self.learnable_decay:
      decay_logit = (tf.matmul(output, meta(self.decay_weights)) +
                     meta(self.decay_bias))
    else:
      decay_logit = tf.fill(tf.shape(direction), self.default_decay_bias)
    learning_rate = state["learning_rate"]
    if self.dynamic_output_scale:
      learning_rate *= 2. * tf.sigmoid(
          tf.matmul(output, meta(self.lr_weights)) + meta(self.lr_bias))
    new_state = {"rms": rms, "decay": tf.sigmoid(decay_logit),
                 "learning_rate": learning_rate, "rnn": rnn}
    return learning_rate * direction, new_state
