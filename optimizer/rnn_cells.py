"""The RNN cells of the learned optimizers, owned by the project.

Keras 3 has no compat.v1 RNN cells, so the cells are small plain classes with
the TF1 variable names (`<cell scope>/kernel`, `bias`; `gates/...` and
`candidate/...` for GRUs) created with `tf.get_variable` in the caller's
variable scope. `BiasGRUCell` is the original's GRU with an injected bias.

Every cell has `state_size` (an int, or a tuple of ints for LSTMCell) and
`output_size`, and is called as `cell(inputs, state) -> (output, new_state)`.
"""

import collections

import numpy as np
import tensorflow.compat.v1 as tf

from optimizer import utils


class _SingleStateCell(object):
  """Base of the cells whose state is one [B, num_units] tensor."""

  def __init__(self, num_units, activation=tf.tanh, random_seed=None):
    self.num_units = num_units
    self.activation = activation
    self.random_seed = random_seed

  @property
  def state_size(self):
    return self.num_units

  @property
  def output_size(self):
    return self.num_units


class BiasGRUCell(_SingleStateCell):
  """GRU whose gate and candidate pre-activations receive an external bias.

  h' = u * h + (1 - u) * c, with r, u = sigmoid([x, h] W_g + b_g + beta_{r,u})
  and c = act([x, r * h] W_c + b_c + beta_c), where `bias` = [beta_r, beta_u,
  beta_c] ([1, 3 num_units]) comes from the caller (the higher RNN levels).
  Note the convention: u weighs the old state. Variables live in scope
  "BiasGRUCell": gates/Affine/{Matrix, Bias} and candidate/Affine/{Matrix,
  Bias}, matrices N(0, (scale / sqrt(fan_in))^2), gate bias `gate_bias_init`.
  The maths is `columns`, on feature-major states [H, B] (the
  HierarchicalRNN's step); `__call__` is the row-major [B, H] view of it.
  """

  def __init__(self, num_units, activation=tf.tanh, scale=0.1,
               gate_bias_init=0., random_seed=None):
    super().__init__(num_units, activation, random_seed)
    self.scale = scale
    self.gate_bias_init = gate_bias_init

  def build(self, input_size):
    """Creates (or reuses) the cell's variables for inputs of `input_size`.

    Returns:
      (gates matrix [D + H, 2H], gates bias [2H], candidate matrix
       [D + H, H], candidate bias [H]); matrix rows are inputs then state.
    """
    with tf.variable_scope(type(self).__name__):
      fan_in = input_size + self.num_units
      with tf.variable_scope("gates"):
        gates = utils.affine_variables(
            fan_in, 2 * self.num_units, scale=self.scale,
            bias_init=self.gate_bias_init, random_seed=self.random_seed)
      with tf.variable_scope("candidate"):
        candidate = utils.affine_variables(fan_in, self.num_units,
                                           scale=self.scale,
                                           random_seed=self.random_seed)
    return gates + candidate

  def column_weights(self, input_size):
    """The cell's variables arranged for feature-major (column) states.

    Returns:
      A `ColumnWeights`: `inputs` [3H, D] (rows r, u, c), `gates_state`
      [2H, H], `candidate_state` [H, H] and `bias` [3H, 1].
    """
    gates_matrix, gates_bias, candidate_matrix, candidate_bias = self.build(
        input_size)
    return ColumnWeights(
        tf.transpose(tf.concat([gates_matrix[:input_size],
                                candidate_matrix[:input_size]], 1)),
        tf.transpose(gates_matrix[input_size:]),
        tf.transpose(candidate_matrix[input_size:]),
        tf.reshape(tf.concat([gates_bias, candidate_bias], 0), [-1, 1]))

  def columns(self, weights, input_part, state):
    """One step for column states: the cell's maths.

    Args:
      weights: the cell's `column_weights`.
      input_part: [3H, B], the inputs' contribution to the r, u and candidate
        pre-activations, the cell's and any external biases included.
      state: [H, B].

    Returns:
      The new state [H, B].
    """
    size = self.num_units
    gates_part, candidate_part = tf.split(input_part, [2 * size, size], axis=0)
    gates = tf.sigmoid(gates_part + tf.matmul(weights.gates_state, state))
    reset, keep = tf.split(gates, 2, axis=0)
    candidate = self.activation(
        candidate_part + tf.matmul(weights.candidate_state, reset * state))
    return keep * state + (1. - keep) * candidate

  def __call__(self, inputs, state, bias=None):
    """One step. inputs [B, D], state [B, H], bias [1, 3H] or None."""
    weights = self.column_weights(inputs.get_shape().as_list()[1])
    input_part = tf.matmul(weights.inputs, inputs, transpose_b=True)
    input_part += weights.bias
    if bias is not None:
      input_part += tf.transpose(bias)
    new_state = tf.transpose(self.columns(weights, input_part,
                                          tf.transpose(state)))
    return new_state, new_state


ColumnWeights = collections.namedtuple(
    "ColumnWeights", "inputs gates_state candidate_state bias")


class BasicRNNCell(_SingleStateCell):
  """h' = tanh([x, h] kernel + bias); variables in "basic_rnn_cell"."""

  scope_name = "basic_rnn_cell"

  def __call__(self, inputs, state):
    with tf.variable_scope(self.scope_name):
      out = self.activation(_linear([inputs, state], self.num_units,
                                    self.random_seed))
    return out, out


class GRUCell(_SingleStateCell):
  """TF1's GRUCell: r, u = sigmoid([x, h] W_g + b_g) (bias init 1),
  c = tanh([x, r h] W_c + b_c), h' = u h + (1 - u) c; variables in
  "gru_cell/gates" and "gru_cell/candidate"."""

  scope_name = "gru_cell"

  def __call__(self, inputs, state):
    with tf.variable_scope(self.scope_name):
      with tf.variable_scope("gates"):
        gates = tf.sigmoid(_linear([inputs, state], 2 * self.num_units,
                                   self.random_seed, bias_init=1.0))
      r, u = tf.split(gates, 2, axis=1)
      with tf.variable_scope("candidate"):
        c = self.activation(_linear([inputs, r * state], self.num_units,
                                    self.random_seed))
    new_state = u * state + (1 - u) * c
    return new_state, new_state


LSTMStateTuple = collections.namedtuple("LSTMStateTuple", "c h")


class LSTMCell(object):
  """TF1's LSTMCell without peepholes or projection.

  i, j, f, o = split([x, h] kernel + bias, 4); c' = sigmoid(f + forget_bias)
  c + sigmoid(i) tanh(j); h' = sigmoid(o) tanh(c'). State is (c, h);
  variables in "lstm_cell".
  """

  scope_name = "lstm_cell"

  def __init__(self, num_units, forget_bias=1.0, activation=tf.tanh,
               random_seed=None):
    self.num_units = num_units
    self.forget_bias = forget_bias
    self.activation = activation
    self.random_seed = random_seed

  @property
  def state_size(self):
    return LSTMStateTuple(self.num_units, self.num_units)

  @property
  def output_size(self):
    return self.num_units

  def __call__(self, inputs, state):
    c, h = state
    with tf.variable_scope(self.scope_name):
      gates = _linear([inputs, h], 4 * self.num_units, self.random_seed)
    i, j, f, o = tf.split(gates, 4, axis=1)
    new_c = (tf.sigmoid(f + self.forget_bias) * c +
             tf.sigmoid(i) * self.activation(j))
    new_h = tf.sigmoid(o) * self.activation(new_c)
    return new_h, LSTMStateTuple(new_c, new_h)


class MultiRNNCell(object):
  """Stacked cells: the output of cell k is the input of cell k + 1.

  Variables of cell k live in "multi_rnn_cell/cell_k/".
  """

  def __init__(self, cells):
    self.cells = list(cells)

  @property
  def state_size(self):
    return tuple(cell.state_size for cell in self.cells)

  @property
  def output_size(self):
    return self.cells[-1].output_size

  def __call__(self, inputs, state):
    new_states = []
    out = inputs
    with tf.variable_scope("multi_rnn_cell"):
      for k, (cell, cell_state) in enumerate(zip(self.cells, state)):
        with tf.variable_scope("cell_%d" % k):
          out, new_state = cell(out, cell_state)
        new_states.append(new_state)
    return out, tuple(new_states)


def _linear(inputs, output_size, random_seed, bias_init=0.0):
  x = tf.concat(inputs, 1)
  fan_in = x.get_shape().as_list()[1]
  kernel = tf.get_variable("kernel", [fan_in, output_size],
                           initializer=tf.glorot_uniform_initializer(
                               seed=random_seed))
  bias = tf.get_variable("bias", [output_size],
                         initializer=tf.constant_initializer(bias_init))
  return tf.matmul(x, kernel) + bias


def flat_state_size(cell):
  """Total number of state columns of `cell` (nested sizes summed)."""
  return int(np.sum(tf.nest.flatten(cell.state_size)))


def pack_state(cell, state):
  """Concatenates a (nested) cell state into one [B, flat_state_size] tensor."""
  return tf.concat(tf.nest.flatten(state), 1)


def unpack_state(cell, flat):
  """Splits a [B, flat_state_size] tensor into the cell's nested state."""
  sizes = tf.nest.flatten(cell.state_size)
  parts = tf.split(flat, sizes, axis=1)
  return tf.nest.pack_sequence_as(cell.state_size, parts)


CELLS = {
    "BiasGRUCell": BiasGRUCell,
    "GRUCell": GRUCell,
    "LSTMCell": LSTMCell,
    "BasicRNNCell": BasicRNNCell,
}


def cell_class(name):
  """The cell class called `name` (a key of CELLS).

  Raises:
    ValueError: unknown name.
  """
  if name not in CELLS:
    raise ValueError("unknown cell class %r; expected one of %s" %
                     (name, ", ".join(sorted(CELLS))))
  return CELLS[name]
