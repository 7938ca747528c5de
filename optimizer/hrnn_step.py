"""The HierarchicalRNN step, feature-major: the maths of the optimizer.

Each tensor's per-coordinate state is one [k, n] array (rows = state
entries, see `state_rows`; columns = coordinates). A step lays the T tensors
of a problem side by side into [k, N] (N = all coordinates) and runs the
coordinate-wise stages once for all of them, so concatenations are block
copies and the GRU is a few (rows x N) matmuls. What differs per tensor (the
level-0 bias from the higher levels, the relative learning rate's reference,
the directions' RMS normalisation, the level-1 summaries, the "first step"
test of the mean squares) uses static column slices (`_Segments`). With XLA
the coordinate-wise work is compiled in independent column chunks that run
in parallel.

The stages, named as in the original: `scale_gradients` (gradient
accumulators and RMS scaling), `features`, the level-0 cell
(`BiasGRUCell.columns`), `_Readouts`, `learning_rate`, `level1` and
`level2`. `step` chains them; apply mode (`apply_gradients`) and
meta-training (`meta_training.unroll`) both call it, the latter with
`differentiable`.
"""

import collections
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

StepResult = collections.namedtuple("StepResult", [
    "steps",         # per tensor, new true parameter = old - step
    "attend_steps",  # per tensor, attended = old true parameter - this;
                     # None without attention
    "states",        # per tensor, the new [k, n] state
    "layers",        # per tensor, the new level-1 state [1, H1]
    "global_state",  # the new level-2 state [1, H2], or None
])


def state_rows(hrnn):
  """(name, number of rows) of the per-coordinate state, in order."""
  rows = [("parameter", hrnn.level_sizes[0])]
  if hrnn.dynamic_output_scale:
    rows.append(("log_learning_rate", 1))
  rows += [("scl_decay", 1), ("inp_decay", 1),
           ("grad_accum", hrnn.num_gradient_scales),
           ("ms", hrnn.num_gradient_scales)]
  return rows


def num_state_rows(hrnn):
  """k, the number of rows of a tensor's state."""
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
  """The per-tensor state dict (entries [n, c]) of a [k, n] state.

  "layer" and "true_param" are not per-coordinate rows and are left out.
  """
  state = {}
  for (name, rows), block in zip(state_rows(hrnn), _split_rows(hrnn, packed)):
    if name in ("grad_accum", "ms"):
      for i in range(rows):
        state["%s%d" % (name, i + 1)] = tf.transpose(block[i:i + 1])
    else:
      state[name] = tf.transpose(block)
  return state


def _split_rows(hrnn, packed):
  return tf.split(packed, [rows for _, rows in state_rows(hrnn)], axis=0)


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


def _join_columns(pieces):
  """[R, w_i] tensors side by side as [R, sum w_i]."""
  return tf.concat(pieces, 1) if len(pieces) > 1 else pieces[0]


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


# --- The stages ---------------------------------------------------------------


def scale_gradients(hrnn, grad, rows, first, differentiable):
  """Gradient accumulators and RMS scaling of a range of coordinates.

  Args:
    hrnn: the HierarchicalRNN.
    grad: [1, w] gradients.
    rows: dict of the state's row blocks (see `state_rows`).
    first: [1 or S, w]: 1 where a mean square takes its first update, which
      uses decay 0 (as `utils.new_mean_squared`).
    differentiable: see `step`.

  Returns:
    (scaled gradients asinh(a / sqrt(ms' + 1e-16)) [S, w], new gradient
     averages a [S, w], new mean squares ms' [S, w]).
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
  decay = scl * (1. - first)
  ms = (1. - decay) * (tf.square(accum) + 1e-12) + decay * rows["ms"]
  scaled = utils.asinh(accum / tf.sqrt(ms + 1e-16), differentiable)
  return scaled, accum, ms


def features(hrnn, scaled, ms, log_lr, reference):
  """The level-0 inputs x [D, w] of a range of coordinates.

  Args:
    hrnn: the HierarchicalRNN.
    scaled: [S, w] scaled gradients.
    ms: [S, w] new mean squares.
    log_lr: [1, w] old log learning rates, or None.
    reference: [1, w] the relative learning rate's reference, or None.

  Returns:
    Rows: scaled gradients, products of adjacent timescales, centred log
    mean squares, relative log learning rate, extreme indicator, learning
    rate shortcut (each where its option is on).
  """
  s_count = hrnn.num_gradient_scales
  rows = [scaled]
  if s_count > 1 and hrnn.use_grad_products:
    scales = tf.split(scaled, s_count, axis=0)
    rows.append(tf.concat([a * b for a, b in zip(scales[:-1], scales[1:])],
                          0))
  if hrnn.use_log_means_squared:
    log_ms = tf.math.log(ms + 1e-16)
    rows.append(log_ms - tf.reduce_mean(log_ms, 0, keepdims=True))
  if hrnn.use_relative_lr:
    rows.append(log_lr - reference)
  if hrnn.use_extreme_indicator:
    rows.append(tf.nn.relu(log_lr - np.log(1.)) -
                tf.nn.relu(np.log(1e-6) - log_lr))
  if hrnn.use_lr_shortcut:
    rows.append(log_lr - np.log(1e-3))
  return tf.concat(rows, 0) if len(rows) > 1 else rows[0]


class _Readouts(object):
  """The linear readouts of the level-0 state.

  One matmul of the [H0, 1] readout vectors (zeros where the original uses
  constants) against [H0, w] states, plus their biases: the direction, with
  attention the attention direction, the scale decay and input decay logits
  and the learning-rate readout.
  """

  def __init__(self, hrnn):
    meta = hrnn.meta
    vectors = [meta(hrnn.update_weights)]
    biases = [tf.zeros([1])]
    if hrnn.use_attention:
      vectors.append(meta(hrnn.attention_weights))
      biases.append(tf.zeros([1]))
    vectors += [meta(hrnn.scl_decay_weights), meta(hrnn.inp_decay_weights),
                meta(hrnn.lr_weights)]
    biases += [tf.reshape(meta(b), [1]) for b in (
        hrnn.scl_decay_bias, hrnn.inp_decay_bias, hrnn.lr_bias)]
    self.use_attention = hrnn.use_attention
    self.matrix = tf.transpose(tf.concat(vectors, 1))
    self.bias = tf.reshape(tf.concat(biases, 0), [-1, 1])

  def __call__(self, h0):
    """A dict of [1, w] readouts of h0 [H0, w]."""
    names = ["direction", "scl_logit", "inp_logit", "lr"]
    if self.use_attention:
      names.insert(1, "attend_direction")
    out = tf.matmul(self.matrix, h0) + self.bias
    return dict(zip(names, tf.split(out, len(names), axis=0)))


def learning_rate(hrnn, log_lr, readout, momentum, differentiable):
  """The learning-rate update of a range of coordinates.

  Args:
    hrnn: the HierarchicalRNN.
    log_lr: [1, w] old log learning rates (None without
      dynamic_output_scale).
    readout: [1, w] the learning-rate readout of the new level-0 state.
    momentum: the learning-rate momentum, sigmoid of its logit (scalar).
    differentiable: the clip passes gradients straight through.

  Returns:
    (log step size [1, w] before the step-size offset, new log learning
     rates [1, w] or None). Without dynamic_output_scale the step size is
     2 sigmoid(readout), returned as its log.
  """
  if not hrnn.dynamic_output_scale:
    return np.log(2.) - tf.nn.softplus(-readout), None
  unclipped = log_lr + readout
  clipped = tf.clip_by_value(unclipped, hrnn.min_log_lr, hrnn.max_log_lr)
  if differentiable:
    clipped = unclipped + tf.stop_gradient(clipped - unclipped)
  return clipped, momentum * log_lr + (1. - momentum) * clipped


def level1(hrnn, means, layers, global_h):
  """The per-tensor RNN's new states [H1, T].

  It sees each tensor's mean over coordinates of [h0, x] (of h0 alone
  without additional features) and, with three levels, a bias from the
  global state [H2, 1].
  """
  summary = means["h0_sums"]
  if hrnn.uses_additional_features:
    summary = tf.concat([summary, means["x_sums"]], 0)
  cell = hrnn.cells[1]
  weights = cell.column_weights(summary.get_shape().as_list()[0])
  input_part = tf.matmul(weights.inputs, summary) + weights.bias
  if hrnn.num_layers == 3:
    input_part += _affine_columns(None, global_h, 3 * hrnn.level_sizes[1])
  return cell.columns(weights, input_part, layers)


def level2(hrnn, layers, global_h):
  """The global RNN's new state [1, H2].

  It sees the last tensor's level-1 state [H1, 1] (the original's
  behaviour) or, with `global_rnn_sees_all_tensors`, their mean.
  """
  if hrnn.global_rnn_sees_all_tensors:
    summary = tf.reduce_mean(layers, 1, keepdims=True)
  else:
    summary = layers[:, -1:]
  cell = hrnn.cells[2]
  weights = cell.column_weights(hrnn.level_sizes[1])
  return tf.transpose(cell.columns(
      weights, tf.matmul(weights.inputs, summary) + weights.bias, global_h))


# --- The step -----------------------------------------------------------------


class _StepWeights(object):
  """The meta-variables that the coordinate-wise stages read."""

  def __init__(self, hrnn, num_tensors, layers, global_h):
    with tf.variable_scope("Layer0_RNN"):
      self.cell0 = hrnn.cells[0]
      self.gru0 = self.cell0.column_weights(hrnn.num_features)
      # [3 H0, T]: the cell's biases plus those from the higher levels.
      self.bias0 = self.gru0.bias + tf.zeros([1, num_tensors])
      if hrnn.num_layers >= 2:
        self.bias0 += _affine_columns("Param", layers, 3 * self.cell0.num_units)
      if hrnn.num_layers == 3:
        self.bias0 += _affine_columns("Global", global_h,
                                      3 * self.cell0.num_units)
    self.readouts = _Readouts(hrnn)
    self.shortcut = self.attend_shortcut = None
    if hrnn.use_gradient_shortcut:
      self.shortcut, _ = utils.affine_variables(
          hrnn.num_gradient_scales, 1, scope="GradsToDelta",
          include_bias=False)
      if hrnn.use_attention:
        self.attend_shortcut, _ = utils.affine_variables(
            hrnn.num_gradient_scales, 1, scope="GradsToAttnDelta",
            include_bias=False)
    if hrnn.dynamic_output_scale:
      self.lr_momentum = tf.sigmoid(
          tf.get_variable("learning_rate_momentum_logit"))
      self.lr_offset = tf.get_variable("param_stepsize_offset")
    else:
      self.lr_momentum, self.lr_offset = None, 0.


def _coordinate_stage(hrnn, chunk, grad, state, first, reference, weights,
                      differentiable):
  """Gradient scaling, features, level 0, readouts and learning rate.

  Args:
    hrnn: the HierarchicalRNN.
    chunk: the range's `_Segments`.
    grad: [1, w] gradients of the range.
    state: [k, w] state of the range.
    first: [1 or S, T]: 1 where a tensor's mean squares take their first
      update (see `step`).
    reference: [1, T] the relative learning rate's reference, or None.
    weights: the `_StepWeights`.
    differentiable: see `step`.

  Returns:
    A dict: "direction" and with attention "attend_direction" [1, w] (not
    yet normalised), "log_step_size" [1, w], "rows" (the new state's row
    blocks) and per-tensor sums [R, T] for the level-1 summaries and the
    normalisation ("*_sums").
  """
  names = [name for name, _ in state_rows(hrnn)]
  rows = dict(zip(names, _split_rows(hrnn, state)))
  log_lr = rows.get("log_learning_rate")
  scaled, accum, ms = scale_gradients(hrnn, grad, rows, chunk.spread(first),
                                      differentiable)
  x = features(hrnn, scaled, ms, log_lr,
               None if reference is None else chunk.spread(reference))
  input_part = tf.matmul(weights.gru0.inputs, x) + chunk.spread(weights.bias0)
  h0 = weights.cell0.columns(weights.gru0, input_part, rows["parameter"])
  readout = weights.readouts(h0)
  result = {"h0_sums": chunk.sums(h0)}
  if hrnn.uses_additional_features:
    result["x_sums"] = chunk.sums(x)
  directions = [("direction", weights.shortcut)]
  if hrnn.use_attention:
    directions.append(("attend_direction", weights.attend_shortcut))
  for name, shortcut in directions:
    direction = readout[name]
    if shortcut is not None:
      direction += tf.matmul(shortcut, scaled, transpose_a=True)
    result[name] = direction
    if hrnn.dynamic_output_scale:
      result[name + "_sums"] = chunk.sums(tf.square(direction))
  result["log_step_size"], new_log_lr = learning_rate(
      hrnn, log_lr, readout["lr"], weights.lr_momentum, differentiable)
  new_rows = [h0]
  if new_log_lr is not None:
    new_rows.append(new_log_lr)
  new_rows += [tf.sigmoid(readout["scl_logit"]),
               tf.sigmoid(readout["inp_logit"]), accum, ms]
  result["rows"] = new_rows
  return result


def _relative_lr_reference(hrnn, states, sizes):
  """[1, T]: each tensor's mean old log learning rate (or the problem's)."""
  row = hrnn.level_sizes[0]
  k = num_state_rows(hrnn)
  sums = tf.reshape(tf.stack([
      tf.reduce_sum(tf.split(s, [row, 1, k - row - 1], axis=0)[1])
      for s in states]), [1, len(sizes)])
  if hrnn.use_problem_lr_mean:
    return tf.fill([1, len(sizes)], tf.reduce_sum(sums) / float(sum(sizes)))
  return sums / np.array(sizes, np.float32)


def step(hrnn, shapes, grads, states, layer_states, global_state, first=None,
         xla=False, chunks=None, differentiable=False):
  """One HierarchicalRNN step of every tensor of a problem.

  Must run in the variable scope the optimizer was built in (it reads the
  meta-variables under "LOL" with reuse).

  Args:
    hrnn: the HierarchicalRNN.
    shapes: the T parameter shapes (fully defined).
    grads: T gradients (tensors or IndexedSlices), same shapes.
    states: T tensors [k, n_t] (see `state_rows`).
    layer_states: T tensors [1, H1] (ignored with one level).
    global_state: [1, H2] (ignored with fewer than three levels).
    first: optional T scalars, 1 for a tensor whose state is fresh (its
      first step) and 0 otherwise. The mean squares' first update uses
      decay 0; without `first` it is taken where a tensor's mean squares are
      all exactly zero (the same thing for states this optimizer produced,
      since mean squares stay positive).
    xla: compile the coordinate-wise work with XLA.
    chunks: into how many column ranges to cut the coordinate-wise work
      (independent kernels that can run in parallel); None: `num_chunks`.
    differentiable: build for differentiation (meta-training): the learning
      rate's clip passes gradients straight through and asinh has its exact
      derivative at 0. The values are the same.

  Returns:
    A `StepResult`; steps shaped as `shapes`.
  """
  shapes = [tf.TensorShape(s) for s in shapes]
  sizes = [int(np.prod(s.as_list())) for s in shapes]
  total = sum(sizes)
  grads = [tf.reshape(tf.convert_to_tensor(g), [1, -1]) for g in grads]
  inverse_sizes = tf.constant(1. / np.array(sizes, np.float32),
                              shape=[1, len(sizes)])
  if first is None:
    s_count = hrnn.num_gradient_scales
    first = _Segments(sizes).all_zero(tf.concat(
        [s[-s_count:] for s in states], 1))                 # [S, T]
  else:
    first = tf.reshape(tf.stack(first), [1, len(sizes)])

  chunk_count = num_chunks(total, xla) if chunks is None else chunks
  bounds = np.linspace(0, total, chunk_count + 1).astype(int)
  chunks = [_Segments(sizes, a, b) for a, b in zip(bounds[:-1], bounds[1:])]

  def compiled():
    return (tf.xla.experimental.jit_scope() if xla
            else contextlib.nullcontext())

  with hrnn.reading_scope():
    with tf.variable_scope("PerTensor"):
      layers = (tf.transpose(tf.concat(layer_states, 0))
                if hrnn.num_layers >= 2 else None)          # [H1, T]
      global_h = (tf.transpose(global_state)
                  if hrnn.num_layers == 3 else None)        # [H2, 1]
      weights = _StepWeights(hrnn, len(sizes), layers, global_h)
    reference = (_relative_lr_reference(hrnn, states, sizes)
                 if hrnn.use_relative_lr else None)

    # Stage 1, per chunk: everything up to the per-tensor means.
    outs = []
    for chunk in chunks:
      with compiled():
        outs.append(_coordinate_stage(
            hrnn, chunk, chunk.gather(grads), chunk.gather(states), first,
            reference, weights, differentiable))
    means = {key: tf.add_n([out[key] for out in outs]) * inverse_sizes
             for key in outs[0] if key.endswith("_sums")}

    new_layers = None
    if hrnn.num_layers >= 2:
      with tf.variable_scope("PerTensor/Layer1_RNN"):
        new_layers = level1(hrnn, means, layers, global_h)
    new_global = None
    if hrnn.num_layers == 3:
      with tf.variable_scope("Layer2_RNN"):
        new_global = level2(hrnn, new_layers, global_h)

  # Stage 2, per chunk: normalise the directions, steps; new state rows.
  pieces = collections.defaultdict(lambda: [[] for _ in sizes])
  for chunk, out in zip(chunks, outs):
    with compiled():
      step_sizes = {"direction": tf.exp(out["log_step_size"] +
                                        weights.lr_offset)}
      if hrnn.use_attention:
        step_sizes["attend_direction"] = tf.exp(out["log_step_size"])
      columns = {"rows": tf.concat(out["rows"], 0)}
      for name, step_size in step_sizes.items():
        direction = out[name]
        if hrnn.dynamic_output_scale:
          direction /= tf.sqrt(chunk.spread(means[name + "_sums"]) + 1e-16)
        columns[name] = step_size * direction
    for name, value in columns.items():
      for (t, _, _), piece in zip(chunk.pieces, chunk.split(value)):
        pieces[name][t].append(piece)
  # A tensor that spans chunks is joined from their pieces (assigning the
  # pieces to column slices of its slot instead is slower than this copy).
  joined = {name: [_join_columns(p) for p in per_tensor]
            for name, per_tensor in pieces.items()}

  def shaped(name):
    return [tf.reshape(value, shape)
            for value, shape in zip(joined[name], shapes)]

  new_layer_states = ([tf.transpose(new_layers[:, t:t + 1])
                       for t in range(len(sizes))]
                      if new_layers is not None else list(layer_states))
  return StepResult(
      shaped("direction"),
      shaped("attend_direction") if hrnn.use_attention else None,
      joined["rows"], new_layer_states, new_global)
