"""GlobalLearningRate: SGD with one learnable learning rate."""

import tensorflow.compat.v1 as tf

from optimizer import trainable_optimizer as opt


class GlobalLearningRate(opt.TrainableOptimizer):
  """theta' = theta - lr * g with the meta-parameter LOL/global_learning_rate.

  Optimizer name "GLR"; no per-tensor state.
  """

  def __init__(self, initial_rate=1e-3, **kwargs):
    """Creates the optimizer.

    Args:
      initial_rate: initial learning rate.
      **kwargs: TrainableOptimizer options (use_attention,
        use_log_objective, obj_train_max_multiplier, use_second_derivatives,
        use_numerator_epsilon).
    """
    super().__init__("GLR", [], **kwargs)
    with tf.variable_scope(opt.OPTIMIZER_SCOPE):
      self.learning_rate = tf.get_variable(
          "global_learning_rate", [],
          initializer=tf.constant_initializer(initial_rate))

  def _compute_update(self, param, grad, state):
    return (param - self.meta(self.learning_rate) *
            tf.convert_to_tensor(grad), state)
