"""LearningRateSchedule: SGD with one learnable learning rate per step."""

import tensorflow.compat.v1 as tf

from optimizer import trainable_optimizer as opt


class LearningRateSchedule(opt.TrainableOptimizer):
  """theta' = theta - lr[min(itr, n_steps - 1)] g (optimizer name "LRS").

  Meta-parameter: `LOL/learning_rates` [n_steps]. Per-tensor state: the
  int32 step counter `itr`; every tensor keeps its own counter, but all of
  them advance together. Steps past the end of the schedule reuse its last
  rate. Sparse gradients are densified.
  """

  def __init__(self, initial_rate=0.0, n_steps=1000, **kwargs):
    """Creates the optimizer.

    Args:
      initial_rate: initial value of every rate. The default 0 means that,
        before meta-training, nothing moves.
      n_steps: length of the schedule.
      **kwargs: TrainableOptimizer options (use_attention,
        use_log_objective, obj_train_max_multiplier, use_second_derivatives,
        use_numerator_epsilon).
    """
    super().__init__("LRS", ["itr"], **kwargs)
    # A Python int: unlike the original's graph constant, it works in any
    # graph the optimizer is later used in.
    self.max_index = n_steps - 1
    with tf.variable_scope(opt.OPTIMIZER_SCOPE):
      self.learning_rates = tf.get_variable(
          "learning_rates", [n_steps],
          initializer=tf.constant_initializer(initial_rate))

  def _initialize_state(self, var):
    del var
    return {"itr": tf.constant(0, tf.int32)}

  def _compute_update(self, param, grad, state):
    itr = state["itr"]
    rate = tf.gather(self.meta(self.learning_rates),
                     tf.minimum(itr, self.max_index))
    new_param = param - rate * tf.convert_to_tensor(grad)
    return new_param, {"itr": itr + 1}
