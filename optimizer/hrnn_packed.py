"""HierarchicalRNN's step in a packed, feature-major layout.

The per-tensor path of `hierarchical_rnn.py` keeps each state entry as an
[n, c] tensor and builds every feature as an [n, 1] column. On CPU that is
slow: concatenating columns copies 4 bytes per row per piece, and each tensor
of the model gets its own few hundred small ops. Here every tensor's
per-coordinate state is one [k, n] array (rows = state entries, columns =
coordinates), the tensors of a step are laid side by side into [k, N]
(N = all coordinates), and the whole level-0 computation runs once:
concatenations are block copies and the GRU is a few (rows x N) matmuls.
What differs per tensor (the level-0 bias from the higher levels, the means
for the relative learning rate, the direction's RMS normalisation and the
level-1 summaries, the "first step" test of the mean squares) uses static
column slices. With XLA the coordinate-wise work is compiled in independent
column chunks that run in parallel. Meta-training (`train()`) carries the
same layout through its loop and differentiates the step as plain ops.

The maths is that of `HierarchicalRNN._compute_updates` (without attention);
the results agree with it to float32 rounding (summation order and a faster
asinh formula differ), which tests/optimizer/hrnn_packed_test.py checks.
"""

import contextlib
import os

import numpy as np
import tensorflow.compat.v1 as tf

from optimizer import trainable_optimizer as opt
from optimizer import utils

# Fewest coordinates per XLA chunk (smaller steps run as one kernel), and
# most chunks (each is compiled separately).
_MIN_CHUNK = 4096
_MAX_CHUNKS = 8


def state_rows(hrnn):
  """(name, number of rows) of the packed per-coordinate state, in order."""
  rows = [("parameter", hrnn.level_sizes[0])]
  if hrnn.dynamic_output_scale:
    rows.append(("log_learning_rate", 1))
  rows += [("scl_decay", 1), ("inp_decay", 1),
           ("grad_accum", hrnn.num_gradient_scales),
           ("ms", hrnn.num_gradient_scales)]
  return rows


def num_state_rows(hrnn):
  """k, the number of rows of a packed state."""
  return sum(rows for _, rows in state_rows(hrnn))


def pack_state(hrnn, state):
  """A per-tensor state dict (entries [n, c]) as one [k, n] tensor."""
  pieces = []
  for name, rows in state_rows(hrnn):
    if name in ("grad_accum", "ms"):
      pieces += [tf.reshape(state["%s%d" % (name, i + 1)], [1, -1])
                 for i in range(rows)]
    else:
      pieces.append(tf.transpose(tf.reshape(state[name], [-1, rows])))
  return tf.concat(pieces, 0)


def unpack_state(hrnn, packed):
  """The per-tensor state dict (entries [n, c]) of a [k, n] packed state.

  "layer" and "true_param" are not per-coordinate rows and are left out.
  """
  sizes = [rows for _, rows in state_rows(hrnn)]
  state = {}
  for (name, rows), block in zip(state_rows(hrnn),
                                 tf.split(packed, sizes, axis=0)):
    if name in ("grad_accum", "ms"):
      for i in range(rows):
        state["%s%d" % (name, i + 1)] = tf.transpose(block[i:i + 1])
    else:
      state[name] = tf.transpose(block)
  return state


class _Segments(object):
  """Where the T tensors' coordinates lie in a range of columns.

  The tensors are contiguous column ranges of the [k, N] layout; a chunk
  (a sub-range) holds pieces of some of them. Per-tensor reductions are
  static slices and broadcasts, which XLA fuses into their neighbours.
  """

  def __init__(self, sizes, start=0, stop=None):
    """The tensors of `sizes` laid side by side, seen in [start, stop)."""
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    stop = bounds[-1] if stop is None else stop
    self.count = len(sizes)
    self.width = stop - start
    # (tensor, first column, end column) of each piece, relative to start,
    # and where the piece begins in its tensor.
    self.pieces = []
    self.offsets = []
    for t in range(self.count):
      first, end = max(bounds[t], start), min(bounds[t + 1], stop)
      if first < end:
        self.pieces.append((t, first - start, end - start))
        self.offsets.append(first - bounds[t])

  def gather(self, per_tensor):
    """The range's columns of T tensors [R, n_t], as one [R, width]."""
    pieces = []
    for (t, a, b), offset in zip(self.pieces, self.offsets):
      whole = offset == 0 and b - a == per_tensor[t].get_shape()[1]
      pieces.append(per_tensor[t] if whole
                    else per_tensor[t][:, offset:offset + b - a])
    return _join_columns(pieces)

  def _per_tensor(self, columns):
    """T columns [R, 1] (zeros for tensors not in range) as [R, T]."""
    if len(columns) == self.count:
      return tf.concat(columns, 1) if self.count > 1 else columns[0]
    present = dict(zip([t for t, _, _ in self.pieces], columns))
    rows = columns[0].get_shape().as_list()[0]
    return tf.concat([present.get(t, tf.zeros([rows, 1]))
                      for t in range(self.count)], 1)

  def sums(self, x):
    """[R, width] -> [R, T]: the sum over each tensor's columns."""
    if len(self.pieces) == 1 and self.count == 1:
      return tf.reduce_sum(x, 1, keepdims=True)
    return self._per_tensor([tf.reduce_sum(piece, 1, keepdims=True)
                             for piece in self.split(x)])

  def all_zero(self, x):
    """[R, width] -> [R, T] as 0/1: whether a tensor's entries are all 0."""
    zero = tf.cast(tf.not_equal(x, 0.), tf.float32)
    return tf.cast(tf.equal(self.sums(zero), 0.), tf.float32)

  def spread(self, per_tensor):
    """[R, T] -> [R, width]: each tensor's value at its columns."""
    rows = per_tensor.get_shape().as_list()[0]
    return tf.concat([tf.broadcast_to(per_tensor[:, t:t + 1], [rows, b - a])
                      for t, a, b in self.pieces], 1)

  def split(self, x):
    """[R, width] -> one [R, piece width] tensor per piece."""
    if len(self.pieces) == 1:
      return [x]
    # One split rather than slices: its gradient is one concatenation,
    # where each slice's would write a zero-filled copy of x.
    return tf.split(x, [b - a for _, a, b in self.pieces], axis=1)


def _asinh(x, differentiable=False):
  """asinh(x) = sign(x) log1p(|x| + x^2 / (1 + sqrt(1 + x^2))).

  Equal to tf.math.asinh to float32 rounding and several times faster on
  CPU, whose Asinh kernel is not vectorised. Differentiating the formula
  gives 0 instead of 1 at x = 0 (through sign and abs); `differentiable`
  attaches asinh's own derivative 1 / sqrt(1 + x^2) instead (the value is
  unchanged for finite x).
  """
  magnitude = tf.abs(x)
  square = tf.square(magnitude)
  root = tf.sqrt(1. + square)
  value = tf.sign(x) * tf.math.log1p(magnitude + square / (1. + root))
  if not differentiable:
    return value
  return (tf.stop_gradient(value) +
          (x - tf.stop_gradient(x)) * tf.stop_gradient(1. / root))


class _GRUWeights(object):
  """A BiasGRUCell's matrices split by input and transposed for columns."""

  def __init__(self, cell, input_size):
    gates_matrix, gates_bias, candidate_matrix, candidate_bias = cell.build(
        input_size)
    self.size = cell.num_units
    # [3H, D]: rows r, u, c for the inputs; [2H, H] and [H, H] for the state.
    self.inputs = tf.transpose(tf.concat(
        [gates_matrix[:input_size], candidate_matrix[:input_size]], 1))
    self.gates_state = tf.transpose(gates_matrix[input_size:])
    self.candidate_state = tf.transpose(candidate_matrix[input_size:])
    self.bias = tf.reshape(tf.concat([gates_bias, candidate_bias], 0), [-1, 1])


def _gru_columns(weights, input_part, state):
  """The BiasGRUCell step for column states.

  Args:
    weights: a `_GRUWeights`.
    input_part: [3H, B], the inputs' contribution to the r, u and candidate
      pre-activations, biases included.
    state: [H, B].

  Returns:
    The new state [H, B].
  """
  size = weights.size
  gates_part, candidate_part = tf.split(input_part, [2 * size, size], axis=0)
  gates = tf.sigmoid(gates_part + tf.matmul(weights.gates_state, state))
  reset, keep = tf.split(gates, 2, axis=0)
  candidate = tf.tanh(candidate_part +
                      tf.matmul(weights.candidate_state, reset * state))
  return keep * state + (1. - keep) * candidate


def _affine_columns(scope, inputs, output_size):
  """x W + b of an existing affine map, for column inputs [d, B] -> [m, B].

  The variables are `<scope>/Affine/{Matrix, Bias}` (`Affine/...` for scope
  None), as `utils.affine` names them.
  """
  with tf.variable_scope(scope) if scope else contextlib.nullcontext():
    matrix, bias = utils.affine_variables(inputs.get_shape().as_list()[0],
                                          output_size)
  return (tf.matmul(matrix, inputs, transpose_a=True) +
          tf.reshape(bias, [-1, 1]))


def num_chunks(total_size, xla):
  """How many column ranges the coordinate-wise work is cut into.

  XLA runs each compiled kernel on one thread; independent chunks let the
  runtime spread a large step over the cores. Plain TensorFlow ops already
  use every core, so without XLA there is one chunk.
  """
  if not xla:
    return 1
  cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
           else os.cpu_count() or 1)
  return int(max(1, min(cores, _MAX_CHUNKS, total_size // _MIN_CHUNK)))


def packed_step(hrnn, params, grads, packed_states, layer_states, global_state,
                first=None, xla=False, chunks=None, differentiable=False):
  """One HierarchicalRNN step of every tensor in the packed layout.

  Must run in the variable scope the optimizer was built in (it reads the
  meta-variables under "LOL" with reuse).

  Args:
    hrnn: the HierarchicalRNN (without attention).
    params: list of T parameter tensors.
    grads: their gradients (tensors or IndexedSlices), same shapes.
    packed_states: T tensors [k, n_t] (see `state_rows`).
    layer_states: T tensors [1, H1] (ignored with one level).
    global_state: [1, H2] (ignored with fewer than three levels).
    first: optional T scalars, 1 for a tensor whose state is fresh (its
      first step) and 0 otherwise. The mean squares' first update uses
      decay 0; without `first` it is taken where a tensor's mean squares are
      all exactly zero, as in the per-tensor path (the same thing for states
      this optimizer produced, since mean squares stay positive).
    xla: compile the coordinate-wise work with XLA.
    chunks: into how many column ranges to cut the coordinate-wise work
      (independent kernels that can run in parallel); None: `num_chunks`.
    differentiable: build for differentiation (meta-training): the learning
      rate's clip passes gradients straight through, as in the per-tensor
      path, and asinh has its exact derivative at 0. The values are the
      same.

  Returns:
    (update_steps, new_packed_states, new_layer_states, new_global_state):
    the steps (new parameter = parameter - step) shaped like `params`, and
    the new states in the input formats.
  """
  sizes = [int(np.prod(p.get_shape().as_list())) for p in params]
  total = sum(sizes)
  grads = [tf.reshape(tf.convert_to_tensor(g), [1, -1]) for g in grads]
  inverse_sizes = tf.constant(1. / np.array(sizes, np.float32),
                              shape=[1, len(sizes)])
  if first is None:
    s_count = hrnn.num_gradient_scales
    first = _Segments(sizes).all_zero(tf.concat(
        [p[-s_count:] for p in packed_states], 1))          # [S, T]
  else:
    first = tf.reshape(tf.stack(first), [1, len(sizes)])

  chunk_count = num_chunks(total, xla) if chunks is None else chunks
  bounds = np.linspace(0, total, chunk_count + 1).astype(int)
  chunks = [_Segments(sizes, a, b) for a, b in zip(bounds[:-1], bounds[1:])]

  def compiled():
    return (tf.xla.experimental.jit_scope() if xla
            else contextlib.nullcontext())

  with tf.variable_scope(opt.OPTIMIZER_SCOPE, reuse=True):
    with tf.variable_scope("PerTensor"):
      layers = (tf.transpose(tf.concat(layer_states, 0))
                if hrnn.num_layers >= 2 else None)          # [H1, T]
      global_h = (tf.transpose(global_state)
                  if hrnn.num_layers == 3 else None)        # [H2, 1]
      with tf.variable_scope("Layer0_RNN"):
        weights0 = _GRUWeights(hrnn.cells[0], hrnn.num_features)
        bias0 = weights0.bias + tf.zeros([1, len(sizes)])
        if hrnn.num_layers >= 2:
          bias0 += _affine_columns("Param", layers, 3 * weights0.size)
        if hrnn.num_layers == 3:
          bias0 += _affine_columns("Global", global_h, 3 * weights0.size)
      readout = _Readouts(hrnn)
      shortcut = None
      if hrnn.use_gradient_shortcut:
        shortcut, _ = utils.affine_variables(
            hrnn.num_gradient_scales, 1, scope="GradsToDelta",
            include_bias=False)
      lr_momentum = tf.sigmoid(tf.get_variable("learning_rate_momentum_logit")
                               if hrnn.dynamic_output_scale else 0.)
      lr_offset = (tf.get_variable("param_stepsize_offset")
                   if hrnn.dynamic_output_scale else 0.)

    reference = None
    if hrnn.use_relative_lr:
      row = hrnn.level_sizes[0]
      k = num_state_rows(hrnn)
      sums = tf.reshape(tf.stack([
          tf.reduce_sum(tf.split(p, [row, 1, k - row - 1], axis=0)[1])
          for p in packed_states]), [1, len(sizes)])
      if hrnn.use_problem_lr_mean:
        reference = tf.fill([1, len(sizes)],
                            tf.reduce_sum(sums) / float(total))
      else:
        reference = sums * inverse_sizes

    # Stage 1, per chunk: everything up to the per-tensor means.
    outs = []
    for chunk in chunks:
      with compiled():
        outs.append(_coordinate_stage(
            hrnn, chunk, chunk.gather(grads), chunk.gather(packed_states),
            first, reference, weights0, bias0, readout, shortcut,
            lr_momentum, differentiable))
    means = {key: tf.add_n([out[key] for out in outs]) * inverse_sizes
             for key in outs[0] if key.endswith("_sums")}

    new_layers = None
    if hrnn.num_layers >= 2:
      with tf.variable_scope("PerTensor/Layer1_RNN"):
        new_layers = _level1(hrnn, means, layers, global_h)
    new_global = None
    if hrnn.num_layers == 3:
      with tf.variable_scope("Layer2_RNN"):
        new_global = _level2(hrnn, new_layers, global_h)

  # Stage 2, per chunk: normalise the direction, step; new state rows.
  new_packed = [[] for _ in sizes]
  steps = [[] for _ in sizes]
  for chunk, out in zip(chunks, outs):
    with compiled():
      direction = out["direction"]
      if hrnn.dynamic_output_scale:
        direction /= tf.sqrt(chunk.spread(means["direction_sums"]) + 1e-16)
      step = chunk.split(tf.exp(out["log_step_size"] + lr_offset) * direction)
      rows = chunk.split(tf.concat(out["rows"], 0))
    for (t, _, _), row, piece in zip(chunk.pieces, rows, step):
      new_packed[t].append(row)
      steps[t].append(piece)
  # A tensor that spans chunks is joined from their pieces (assigning the
  # pieces to column slices of its slot instead is slower than this copy).
  new_packed = [_join_columns(pieces) for pieces in new_packed]
  steps = [tf.reshape(_join_columns(pieces), p.get_shape())
           for pieces, p in zip(steps, params)]
  new_layer_states = ([tf.transpose(new_layers[:, t:t + 1])
                       for t in range(len(sizes))]
                      if new_layers is not None else list(layer_states))
  return steps, new_packed, new_layer_states, new_global


def _join_columns(pieces):
  """[R, w_i] tensors side by side as [R, sum w_i]."""
  return tf.concat(pieces, 1) if len(pieces) > 1 else pieces[0]


def _coordinate_stage(hrnn, chunk, grad, state, first, reference, weights0,
                      bias0, readout, shortcut, lr_momentum, differentiable):
  """Features, level 0 and readouts of a range of coordinates.

  Args:
    hrnn: the HierarchicalRNN.
    chunk: the range's `_Segments`.
    grad: [1, w] gradients of the range.
    state: [k, w] packed state of the range.
    first: [1 or S, T]: 1 where a tensor's mean squares take their first
      update (see `packed_step`).
    reference: [1, T] the relative learning rate's reference, or None.
    weights0: the level-0 `_GRUWeights`.
    bias0: [3 H0, T] level-0 pre-activation biases (cell and higher levels).
    readout: the `_Readouts`.
    shortcut: [S, 1] gradient-shortcut matrix, or None.
    lr_momentum: the learning-rate momentum (scalar).
    differentiable: see `packed_step`.

  Returns:
    A dict: "direction" [1, w] (not yet normalised), "log_step_size"
    [1, w], "rows" (the new packed state's row blocks) and per-tensor sums
    [R, T] for the level-1 summaries and the normalisation ("*_sums").
  """
  names = [name for name, _ in state_rows(hrnn)]
  rows = dict(zip(names, tf.split(state, [n for _, n in state_rows(hrnn)],
                                  axis=0)))
  x, scaled, accum, ms = _features(hrnn, grad, rows, chunk, first, reference,
                                   differentiable)
  input_part = tf.matmul(weights0.inputs, x) + chunk.spread(bias0)
  h0 = _gru_columns(weights0, input_part, rows["parameter"])
  direction, scl_logit, inp_logit, lr_readout = readout(h0)
  if shortcut is not None:
    direction += tf.matmul(shortcut, scaled, transpose_a=True)
  result = {"direction": direction, "h0_sums": chunk.sums(h0)}
  if hrnn._uses_additional_features:
    result["x_sums"] = chunk.sums(x)
  new_rows = [h0]
  if hrnn.dynamic_output_scale:
    result["direction_sums"] = chunk.sums(tf.square(direction))
    log_lr = rows["log_learning_rate"]
    unclipped = log_lr + lr_readout
    clipped = tf.clip_by_value(unclipped, hrnn.min_log_lr, hrnn.max_log_lr)
    if differentiable:
      clipped = unclipped + tf.stop_gradient(clipped - unclipped)
    new_rows.append(lr_momentum * log_lr + (1. - lr_momentum) * clipped)
    result["log_step_size"] = clipped
  else:
    # 2 sigmoid(readout), as a log for the common exp of stage 2.
    result["log_step_size"] = np.log(2.) - tf.nn.softplus(-lr_readout)
  new_rows += [tf.sigmoid(scl_logit), tf.sigmoid(inp_logit), accum, ms]
  result["rows"] = new_rows
  return result


def _level1(hrnn, means, layers, global_h):
  """The per-tensor RNN's new states [H1, T].

  It sees each tensor's mean over coordinates of [h0, x] (of h0 alone
  without additional features) and, with three levels, a bias from the
  global state.
  """
  summary = means["h0_sums"]
  if hrnn._uses_additional_features:
    summary = tf.concat([summary, means["x_sums"]], 0)
  weights = _GRUWeights(hrnn.cells[1], summary.get_shape().as_list()[0])
  input_part = tf.matmul(weights.inputs, summary) + weights.bias
  if hrnn.num_layers == 3:
    input_part += _affine_columns(None, global_h, 3 * hrnn.level_sizes[1])
  return _gru_columns(weights, input_part, layers)


def _level2(hrnn, layers, global_h):
  """The global RNN's new state [1, H2].

  It sees the last tensor's level-1 state (the original's behaviour) or,
  with `global_rnn_sees_all_tensors`, their mean.
  """
  if hrnn.global_rnn_sees_all_tensors:
    summary = tf.reduce_mean(layers, 1, keepdims=True)
  else:
    summary = layers[:, -1:]
  weights = _GRUWeights(hrnn.cells[2], hrnn.level_sizes[1])
  return tf.transpose(_gru_columns(
      weights, tf.matmul(weights.inputs, summary) + weights.bias, global_h))


def _features(hrnn, grad, rows, chunk, first, reference, differentiable):
  """The level-0 inputs of a range of coordinates, feature-major.

  Args:
    hrnn: the HierarchicalRNN.
    grad: [1, w] gradients.
    rows: dict of the packed state's row blocks (see `state_rows`).
    chunk: the range's `_Segments`.
    first: [1 or S, T] fresh-state flags.
    reference: see `_coordinate_stage`.
    differentiable: see `packed_step`.

  Returns:
    (x [D, w] features, scaled gradients [S, w], new gradient averages
     [S, w], new mean squares [S, w]).
  """
  s_count = hrnn.num_gradient_scales
  inp = utils.decay_timescales(rows["inp_decay"], s_count)
  scl = utils.decay_timescales(
      rows["scl_decay"], s_count if hrnn.use_multiple_scale_decays else 1)
  inp = tf.concat(inp, 0) if s_count > 1 else inp[0]
  scl = tf.concat(scl, 0) if len(scl) > 1 else scl[0]
  if s_count == 1:
    accum = grad
  else:
    accum = (1. - inp) * grad + inp * rows["grad_accum"]
  # As utils.new_mean_squared: a tensor's first update (all its mean squares
  # exactly zero) uses decay 0.
  old_ms = rows["ms"]
  decay = scl * (1. - chunk.spread(first))
  ms = (1. - decay) * (tf.square(accum) + 1e-12) + decay * old_ms
  scaled = _asinh(accum / tf.sqrt(ms + 1e-16), differentiable)

  features = [scaled]
  if s_count > 1 and hrnn.use_grad_products:
    scales = tf.split(scaled, s_count, axis=0)
    features.append(tf.concat([a * b for a, b in zip(scales[:-1],
                                                     scales[1:])], 0))
  if hrnn.use_log_means_squared:
    log_ms = tf.math.log(ms + 1e-16)
    features.append(log_ms - tf.reduce_mean(log_ms, 0, keepdims=True))
  log_lr = rows.get("log_learning_rate")
  if hrnn.use_relative_lr:
    features.append(log_lr - chunk.spread(reference))
  if hrnn.use_extreme_indicator:
    features.append(tf.nn.relu(log_lr - np.log(1.)) -
                    tf.nn.relu(np.log(1e-6) - log_lr))
  if hrnn.use_lr_shortcut:
    features.append(log_lr - np.log(1e-3))
  x = tf.concat(features, 0) if len(features) > 1 else features[0]
  return x, scaled, accum, ms


class _Readouts(object):
  """Direction, scale-decay, input-decay and learning-rate readouts.

  One matmul of the four [H0, 1] readout vectors (zeros where the original
  uses constants) against [H0, w] states, plus their biases.
  """

  def __init__(self, hrnn):
    self.matrix = tf.transpose(tf.concat(
        [hrnn.update_weights, hrnn.scl_decay_weights,
         hrnn.inp_decay_weights, hrnn.lr_weights], 1))
    self.bias = tf.reshape(tf.concat(
        [tf.zeros([1]), tf.reshape(hrnn.scl_decay_bias, [1]),
         tf.reshape(hrnn.inp_decay_bias, [1]),
         tf.reshape(hrnn.lr_bias, [1])], 0), [4, 1])

  def __call__(self, h0):
    """Four [1, w] readouts of h0 [H0, w]."""
    out = tf.matmul(self.matrix, h0) + self.bias
    return tf.split(out, 4, axis=0)
