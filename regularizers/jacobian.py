"""The original's "jacob" regulariser: the mean squared gradient entry."""

import tensorflow.compat.v1 as tf


def mean_squared_gradient(grads):
  """||g||^2 / N over all N gradient entries (dense or IndexedSlices).

  The original called it a Jacobian trace; it is the trace of the gradient's
  outer product divided by N.
  """
  dense = [tf.reshape(tf.convert_to_tensor(g), [-1]) for g in grads]
  return tf.reduce_mean(tf.square(tf.concat(dense, 0)))
