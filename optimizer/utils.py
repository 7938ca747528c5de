"""Maths shared by the learned optimizers."""

import numpy as np
import tensorflow.compat.v1 as tf


def make_finite(t, replacement):
  """`t` where finite, else `replacement` (same shape)."""
  return tf.where_v2(tf.math.is_finite(t), t, replacement)


def asinh(x, differentiable=True):
  """Inverse hyperbolic sine, sign(x) log1p(|x| + x^2 / (1 + sqrt(1 + x^2))).

  Equal to tf.math.asinh to float32 rounding and several times faster on
  CPU, whose Asinh kernel is not vectorised. The original computed
  log(x + sqrt(1 + x^2)), which loses precision and reaches -inf for large
  negative x in float32 (docs/fidelity.md).

  Args:
    x: a float tensor.
    differentiable: attach asinh's own derivative 1 / sqrt(1 + x^2).
      Differentiating the formula itself gives 0 instead of 1 at x = 0
      (through sign and abs); the value is the same either way, so only
      graphs that are never differentiated (apply mode) pass False.

  Returns:
    asinh(x), shaped like x.
  """
  magnitude = tf.abs(x)
  square = tf.square(magnitude)
  root = tf.sqrt(1. + square)
  value = tf.sign(x) * tf.math.log1p(magnitude + square / (1. + root))
  if not differentiable:
    return value
  return (tf.stop_gradient(value) +
          (x - tf.stop_gradient(x)) * tf.stop_gradient(1. / root))


def decay_timescales(decay, count):
  """[d, d^(1/2), d^(1/4), ...]: `count` decays of doubling timescales."""
  decays = [decay]
  for _ in range(count - 1):
    decays.append(tf.sqrt(decays[-1]))
  return decays


def affine_variables(input_size, output_size, scope="Affine", scale=0.1,
                     vec_mean=0., include_bias=True, bias_init=0.,
                     random_seed=None):
  """Gets or creates the `Matrix` (and `Bias`) of an affine map.

  Args:
    input_size: fan-in.
    output_size: fan-out.
    scope: variable scope holding the variables.
    scale: the matrix is N(vec_mean, (scale / sqrt(input_size))^2).
    vec_mean: mean of the matrix entries.
    include_bias: whether to create `Bias`.
    bias_init: constant initial bias.
    random_seed: op-level seed of the matrix initializer.

  Returns:
    (matrix, bias); bias is None without `include_bias`.
  """
  with tf.variable_scope(scope):
    matrix = tf.get_variable(
        "Matrix", [input_size, output_size],
        initializer=tf.random_normal_initializer(
            mean=vec_mean, stddev=scale / np.sqrt(input_size),
            seed=random_seed))
    bias = None
    if include_bias:
      bias = tf.get_variable("Bias", [output_size],
                             initializer=tf.constant_initializer(bias_init))
  return matrix, bias


def affine(inputs, output_size, scope="Affine", scale=0.1, vec_mean=0.,
           include_bias=True, bias_init=0., random_seed=None):
  """x W (+ b) for x the concatenation of `inputs` along axis 1.

  Args:
    inputs: a tensor [B, d] or a list of them.
    output_size: number of output columns.
    scope, scale, vec_mean, include_bias, bias_init, random_seed: as in
      `affine_variables`.

  Returns:
    A [B, output_size] tensor.
  """
  if not isinstance(inputs, (list, tuple)):
    inputs = [inputs]
  x = tf.concat(inputs, 1) if len(inputs) > 1 else inputs[0]
  input_size = x.get_shape().as_list()[1]
  matrix, bias = affine_variables(input_size, output_size, scope, scale,
                                  vec_mean, include_bias, bias_init,
                                  random_seed)
  out = tf.matmul(x, matrix)
  return out + bias if bias is not None else out


def project(inputs, weights, bias=0., activation=tf.identity):
  """activation(inputs W + bias), without variables."""
  return activation(tf.matmul(inputs, weights) + bias)


def new_mean_squared(grad_vec, decay, ms):
  """Exponential moving average of squared gradients.

  The first update (every entry of `ms` exactly zero) uses decay 0, so the
  average starts at g^2 rather than being biased towards zero.

  Args:
    grad_vec: gradients, [n, 1].
    decay: decay rates in [0, 1], broadcastable to [n, 1].
    ms: previous mean squares, [n, 1].

  Returns:
    (1 - d) (g^2 + 1e-12) + d ms.
  """
  checks = [tf.assert_less_equal(decay, tf.ones_like(decay)),
            tf.assert_greater_equal(decay, tf.zeros_like(decay))]
  with tf.control_dependencies(checks):
    squared = tf.square(grad_vec) + 1e-12
  first = tf.reduce_all(tf.equal(ms, 0.))
  d = tf.where_v2(first, tf.zeros_like(decay), decay)
  return (1. - d) * squared + d * ms


def rms_scaling(gradient, decay, ms, update_ms=True):
  """Gradient divided by its running RMS, squashed with asinh.

  Returns:
    (asinh(g / sqrt(ms' + 1e-16)), ms') with g reshaped to [n, 1].
  """
  g = tf.reshape(gradient, [-1, 1])
  if update_ms:
    ms = new_mean_squared(g, decay, ms)
  return asinh(g / tf.sqrt(ms + 1e-16)), ms


def accumulate_sparse_gradients(grad):
  """Unique indices of an IndexedSlices and the values summed per index."""
  indices, positions = tf.unique(grad.indices)
  values = tf.math.unsorted_segment_sum(grad.values, positions,
                                        tf.size(indices))
  return indices, values


def sparse_row_update(param, grad, state, row_step):
  """Updates only the rows of `param` (and of its state) that `grad` touches.

  Args:
    param: the parameter tensor.
    grad: an IndexedSlices gradient of it.
    state: dict of per-coordinate state entries, each [n, c].
    row_step: function (gradient values, dict of the touched state rows)
      -> (step [m, 1], dict of new state rows), m the touched coordinates.

  Returns:
    (new param, new state): untouched rows and their state unchanged.
  """
  indices, values = accumulate_sparse_gradients(grad)
  head_dims = tf.shape(param)
  rows = {}
  for key, value in state.items():
    rows[key] = slice_tensor(value, indices, head_dims)
    rows[key].set_shape([None, value.get_shape()[1]])
  step, new_rows = row_step(values, rows)
  dense_step = stack_tensor(step, indices, tf.reshape(param, [-1, 1]),
                            head_dims)
  new_state = {key: update_slices(new_rows[key], indices, state[key],
                                  head_dims)
               for key in state}
  return param - tf.reshape(dense_step, tf.shape(param)), new_state


def slice_tensor(dense, indices, head_dims):
  """Rows of `dense` ([prod(head_dims), ...]) for `indices` of head_dims[0]."""
  tail = tf.shape(dense)[1:]
  dense = tf.reshape(dense, tf.concat([head_dims, tail], 0))
  return tf.reshape(tf.gather(dense, indices), tf.concat([[-1], tail], 0))


def stack_tensor(slices, indices, dense, head_dims):
  """Inverse of slice_tensor: `slices` at `indices`, zeros elsewhere."""
  tail = tf.shape(dense)[1:]
  full_shape = tf.concat([head_dims, tail], 0)
  slices = tf.reshape(slices, tf.concat([[-1], full_shape[1:]], 0))
  indices = tf.expand_dims(tf.cast(indices, tf.int32), -1)
  return tf.reshape(tf.scatter_nd(indices, slices, full_shape),
                    tf.shape(dense))


def update_slices(slices, indices, dense, head_dims):
  """`dense` with the rows at `indices` replaced by `slices`."""
  tail = tf.shape(dense)[1:]
  full_shape = tf.concat([head_dims, tail], 0)
  new_rows = stack_tensor(slices, indices, dense, head_dims)
  mask = tf.scatter_nd(tf.expand_dims(tf.cast(indices, tf.int32), -1),
                       tf.ones_like(indices, dtype=tf.bool), head_dims[:1])
  mask = tf.reshape(mask, tf.concat([head_dims[:1],
                                     tf.ones_like(full_shape[1:])], 0))
  mask = tf.broadcast_to(mask, full_shape)
  merged = tf.where_v2(mask, tf.reshape(new_rows, full_shape),
                    tf.reshape(dense, full_shape))
  return tf.reshape(merged, tf.shape(dense))
