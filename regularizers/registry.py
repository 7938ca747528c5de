"""--reg_option names -> regulariser builders."""

import tensorflow.compat.v1 as tf

from regularizers import hessian
from regularizers import jacobian

NAMES = ("hessian", "hessian-ev", "hessian-esd", "jacob")


def make_regularizer(option, num_iters=10, seed=None, fixed_probes=False):
  """A function (objective, params) -> scalar regulariser of `objective`.

  Args:
    option: "hessian" (Hutchinson trace), "hessian-ev" (top eigenvalue by
      power iteration), "hessian-esd" (sum of the Lanczos Ritz values) or
      "jacob" (mean squared gradient).
    num_iters: probes, power iterations or Lanczos steps (hessian_itrs).
    seed: seed of the probe vectors.
    fixed_probes: the original's probes frozen into the graph.

  Returns:
    The function; its ops live under the name scope "regularizer".

  Raises:
    ValueError: unknown option or num_iters < 1.
  """
  if option not in NAMES:
    raise ValueError("unknown regulariser %r; expected one of %s" %
                     (option, ", ".join(NAMES)))
  if num_iters < 1:
    raise ValueError("num_iters must be at least 1, got %d" % num_iters)

  def regularizer(objective, params):
    with tf.name_scope("regularizer"):
      grads = hessian.dense_gradients(tf.gradients(objective, params), params)
      if option == "jacob":
        return jacobian.mean_squared_gradient(grads)
      if option == "hessian":
        return hessian.hutchinson_trace(grads, params, num_iters, seed,
                                        fixed_probes)
      if option == "hessian-ev":
        return hessian.top_eigenvalue_sum(grads, params, num_iters, 1, seed)
      return hessian.lanczos_trace(grads, params, num_iters, seed,
                                   fixed_probes)

  return regularizer
