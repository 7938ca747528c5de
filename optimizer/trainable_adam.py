"""TrainableAdam: Adam whose hyperparameters are meta-parameters.

The learning rate, both moment decays and epsilon are variables under scope
"LOL", stored in unconstrained form (log and logit) so that meta-training
keeps them in range.

The original's second-moment update was written as v / (1 - (g^2)^beta2),
which keeps v at exactly 0 (NaN where |g| = 1) and turns the optimizer into
bias-corrected momentum SGD with an effective learning rate of about
1e5 * lr. The default here is Adam's intended update; `frozen_second_moment`
reproduces the original's form (docs/fidelity.md).
"""

import numpy as np
import tensorflow.compat.v1 as tf

from optimizer import trainable_optimizer as opt
from optimizer import utils

# Terms the original adds to keep the step finite.
_SQRT_EPSILON = 1e-10
_EPSILON_FLOOR = 1e-10


def _logit(p):
  return float(np.log(p / (1. - p)))


class TrainableAdam(opt.TrainableOptimizer):
  """Adam with learnable learning rate, betas and epsilon (name "Adam").

  Meta-parameters (scalars under "LOL"): `log_learning_rate`, `beta1_logit`,
  `beta2_logit`, `log_epsilon`. Per-tensor state: the first moment `m`, the
  second moment `v` and the step count `t`, each [n, 1] for a tensor of n
  elements. The step count is per coordinate, so with sparse gradients only
  the touched rows advance (lazy Adam).

  With a = exp(log_learning_rate), b1 = sigmoid(beta1_logit),
  b2 = sigmoid(beta2_logit) and eps = exp(log_epsilon) + 1e-10:

      t' = t + 1
      m' = b1 m + (1 - b1) g
      v' = b2 v + (1 - b2) g^2        (frozen_second_moment: v / (1 - (g^2)^b2))
      theta' = theta - a m'/(1 - b1^t') / (sqrt(v'/(1 - b2^t') + 1e-10) + eps)
  """

  def __init__(self, learning_rate=1e-3, beta1=0.9, beta2=0.999,
               epsilon=1e-8, frozen_second_moment=False, **kwargs):
    """Creates the optimizer and its meta-variables.

    Args:
      learning_rate: initial learning rate, > 0.
      beta1: initial first-moment decay, in (0, 1).
      beta2: initial second-moment decay, in (0, 1).
      epsilon: initial epsilon, > 0.
      frozen_second_moment: reproduce the original's second-moment update,
        under which v stays 0 (a bug kept for number parity only).
      **kwargs: TrainableOptimizer options (use_attention,
        use_log_objective, obj_train_max_multiplier, use_second_derivatives,
        use_numerator_epsilon).

    Raises:
      ValueError: an argument is out of range.
    """
    if learning_rate <= 0:
      raise ValueError("learning_rate must be positive, got %r" %
                       (learning_rate,))
    if epsilon <= 0:
      raise ValueError("epsilon must be positive, got %r" % (epsilon,))
    for name, beta in (("beta1", beta1), ("beta2", beta2)):
      if not 0 < beta < 1:
        raise ValueError("%s must lie strictly between 0 and 1, got %r" %
                         (name, beta))
    super().__init__("Adam", ["m", "v", "t"], **kwargs)
    self.frozen_second_moment = frozen_second_moment
    with tf.variable_scope(opt.OPTIMIZER_SCOPE):
      self.log_learning_rate = _scalar_variable("log_learning_rate",
                                                np.log(learning_rate))
      self.beta1_logit = _scalar_variable("beta1_logit", _logit(beta1))
      self.beta2_logit = _scalar_variable("beta2_logit", _logit(beta2))
      self.log_epsilon = _scalar_variable("log_epsilon", np.log(epsilon))

  def _initialize_state(self, var):
    n = var.get_shape().num_elements()
    return {key: tf.zeros([n, 1]) for key in ("m", "v", "t")}

  def _compute_update(self, param, grad, state):
    if isinstance(grad, tf.IndexedSlices):
      return utils.sparse_row_update(
          param, grad, state,
          lambda values, rows: self._adam_step(tf.reshape(values, [-1, 1]),
                                               rows))
    g = tf.reshape(grad, [-1, 1])
    step, new_state = self._adam_step(g, state)
    return param - tf.reshape(step, tf.shape(param)), new_state

  def _adam_step(self, g, state):
    """The Adam step for gradients `g` [k, 1] and the matching state rows.

    Returns:
      (step [k, 1], new state dict); the new parameters are theta - step.
    """
    meta = self.meta
    beta1 = tf.sigmoid(meta(self.beta1_logit))
    beta2 = tf.sigmoid(meta(self.beta2_logit))
    epsilon = tf.exp(meta(self.log_epsilon)) + _EPSILON_FLOOR
    learning_rate = tf.exp(meta(self.log_learning_rate))

    t = state["t"] + 1.
    m = beta1 * state["m"] + (1. - beta1) * g
    if self.frozen_second_moment:
      v = state["v"] / (1. - tf.pow(tf.square(g), beta2))
    else:
      v = beta2 * state["v"] + (1. - beta2) * tf.square(g)
    m_hat = m / (1. - tf.pow(beta1, t))
    v_hat = v / (1. - tf.pow(beta2, t))
    step = learning_rate * m_hat / (tf.sqrt(v_hat + _SQRT_EPSILON) + epsilon)
    return step, {"m": m, "v": v, "t": t}


def _scalar_variable(name, value):
  return tf.get_variable(name, [], initializer=tf.constant_initializer(
      float(value)))
