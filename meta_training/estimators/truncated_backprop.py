"""Truncated backpropagation through the unroll: the original's estimator.

The meta-gradient is tf.gradients of the partial unroll's meta-objective
(plus the L2 penalty) with respect to the meta-parameters, through the
unroll's steps only: the state it starts from is carried in from the
previous partial unroll and treated as constant (truncation). Imitation is
a second objective of the same estimator: the teacher-forced unroll's
imitation loss, minimised with the same meta-optimizer and slots.

With a batch of tasks the objective is the tasks' mean meta-objective (or
mean imitation loss): one backward pass through all of them, one
meta-update.
"""

import tensorflow.compat.v1 as tf

from meta_training.estimators import base
from meta_training.estimators import meta_update


class TruncatedBackprop(base.GradientEstimator):
  """One RMSProp meta-update per partial unroll, from its meta-gradient.

  `train_op` updates without carrying the state on; `update_and_carry`
  also copies the unroll's final state into the carried variables (unless
  `carry_state` is fed False) in the same run: every unroll of a
  meta-iteration runs the same fetches, so TensorFlow prepares one executor
  for them. With imitation, `imitation_train_op` and
  `imitation_update_and_carry` do the same for the imitation loss.
  """

  IMITATION = True

  def __init__(self, context):
    super().__init__(context)
    settings = context.settings
    self._meta_vars = context.meta_vars
    self._settings = settings
    self._global_step = context.global_step
    self._optimizer = meta_update.optimizer(settings, self._global_step)
    self.train_op, raw, clipped = self._meta_update(self.meta_objective)
    if settings.loss_ceiling:
      self.skipped = meta_update.skipped_counter()
    self.gradients = list(zip(self._meta_vars, raw, clipped))
    self._pairs = [pair for out in self.tasks
                   for pair in zip(out.carried_variables, out.carried_values)]
    self.imitation_loss = base.task_mean(t.imitation_loss
                                         for t in self.tasks)
    self.carry_state = tf.placeholder_with_default(True, [],
                                                   name="propagate_state")
    self.update_and_carry = self._then_carry(self.train_op)
    self.imitation_train_op = self.imitation_update_and_carry = None
    if context.imitation:
      self.imitation_train_op, _, _ = self._meta_update(self.imitation_loss)
      self.imitation_update_and_carry = self._then_carry(
          self.imitation_train_op)

  def _meta_update(self, objective):
    l2_reg = self._settings.l2_reg
    if l2_reg:
      objective += l2_reg * tf.add_n([tf.reduce_sum(tf.square(v))
                                      for v in self._meta_vars])
    raw = tf.gradients(objective, self._meta_vars)
    clipped = meta_update.clip(raw, self._settings)
    op = meta_update.apply(self._optimizer, raw, clipped, self._meta_vars,
                           self._global_step, self._settings)
    return op, raw, clipped

  def _then_carry(self, op):
    # The state carried on is the one of the forward pass that produced the
    # meta-gradient (one session.run); the copies wait for the meta-update
    # so that no read of the old state by the backward pass can see them:
    # the cond's predicate, and so every op of its branches, waits for it.
    with tf.control_dependencies([op]):
      carry = tf.identity(self.carry_state)
    copies = tf.cond(
        carry,
        lambda: tf.group(*[tf.assign(var, value)
                           for var, value in self._pairs]),
        tf.no_op)
    return tf.group(op, copies)

  def run(self, sess, feed_for, imitating, carry, fetches):
    feed = base.task_feed(feed_for, self.tasks)
    feed[self.carry_state] = carry
    if imitating:
      loss, _ = sess.run([self.imitation_loss,
                          self.imitation_update_and_carry], feed)
      return {"meta_objective": loss}
    names = sorted(fetches)
    values = sess.run(
        [self.meta_objective, [fetches[n] for n in names],
         self.update_and_carry], feed)
    result = dict(zip(names, values[1]))
    result["meta_objective"] = values[0]
    return result
