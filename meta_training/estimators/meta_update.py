"""Applying a meta-gradient estimate: meta-optimizer, schedule, clipping.

Every estimator turns its estimate into a meta-update the same way (the
settings of `config.MetaOptimizer`):

- the meta-optimizer: TF1 RMSProp (the original; its mean-square slot starts
  at 1, so its first steps are about learning rate x meta-gradient) or Adam;
- its learning rate: `learning_rate`, optionally after a linear warm-up over
  `warmup_steps` meta-updates and with a cosine decay to 0 over
  `decay_steps` more (a function of the global step);
- the meta-gradients: non-finite entries set to 0 and each entry clipped to
  [-gradient_clip, gradient_clip] (the original), then optionally the whole
  clipped to the global norm `gradient_clip_norm`;
- with a bounded meta-loss (`loss_ceiling` > 0) an estimate with a
  non-finite entry is not applied at all; the skips are counted.

With every option at its default the ops built are the original's.
"""

import math

import tensorflow.compat.v1 as tf

from optimizer import utils

SKIPPED_VARIABLE = "meta_training/skipped_meta_updates"


def learning_rate(settings, global_step):
  """The meta-learning rate: a float, or a tensor of `global_step` when a
  warm-up or decay is set."""
  base = settings.learning_rate
  if not settings.warmup_steps and settings.decay == "constant":
    return base
  step = tf.cast(global_step, tf.float32)
  rate = tf.constant(base, tf.float32)
  if settings.warmup_steps:
    rate *= tf.minimum(1., (step + 1.) / float(settings.warmup_steps))
  if settings.decay == "cosine":
    progress = tf.clip_by_value(
        (step - float(settings.warmup_steps)) / float(settings.decay_steps),
        0., 1.)
    rate *= 0.5 * (1. + tf.cos(math.pi * progress))
  return rate


def optimizer(settings, global_step):
  """The meta-optimizer of `settings` (a `config.MetaOptimizer`)."""
  rate = learning_rate(settings, global_step)
  if settings.meta_optimizer == "adam":
    return tf.train.AdamOptimizer(
        rate, beta1=settings.adam_beta1, beta2=settings.adam_beta2,
        epsilon=settings.adam_epsilon, use_locking=True)
  return tf.train.RMSPropOptimizer(
      rate, decay=settings.rms_decay, epsilon=settings.rms_epsilon,
      use_locking=True)


def clip(gradients, settings):
  """Raw meta-gradients made finite (non-finite entries 0), clipped to
  [-gradient_clip, gradient_clip] and, with `gradient_clip_norm`, to that
  global norm."""
  clipped = [tf.clip_by_value(utils.make_finite(g, tf.zeros_like(g)),
                              -settings.gradient_clip, settings.gradient_clip)
             for g in (tf.convert_to_tensor(g) for g in gradients)]
  if settings.gradient_clip_norm:
    clipped, _ = tf.clip_by_global_norm(clipped, settings.gradient_clip_norm)
  return clipped


def skipped_counter():
  """The count of meta-updates skipped for a non-finite estimate (a global
  variable, saved with the checkpoints)."""
  with tf.variable_scope("meta_training", reuse=tf.AUTO_REUSE):
    return tf.get_variable("skipped_meta_updates", [], tf.int64,
                           initializer=tf.zeros_initializer(),
                           trainable=False)


def apply(meta_optimizer, raw, gradients, meta_vars, global_step, settings):
  """The meta-update: `meta_optimizer` applies `gradients` once every one
  of them is computed (reads of reference variables alias their buffers,
  see docs/fidelity.md E14). With a bounded meta-loss, an estimate whose
  `raw` gradients have a non-finite entry is skipped and counted instead.
  """
  with tf.control_dependencies(gradients):
    if not settings.loss_ceiling:
      return meta_optimizer.apply_gradients(zip(gradients, meta_vars),
                                            global_step=global_step)
    # Variables made inside the condition would be named after it (e.g.
    # Adam's "cond_6/beta1_power"); an apply built (never run) outside it
    # first makes the slots where a run without a ceiling has them, and the
    # apply in the condition reuses them.
    meta_optimizer.apply_gradients(zip(gradients, meta_vars))
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(
        tf.convert_to_tensor(g))) for g in raw])
    counter = skipped_counter()
    return tf.cond(
        finite,
        lambda: tf.group(meta_optimizer.apply_gradients(
            zip(gradients, meta_vars), global_step=global_step)),
        lambda: tf.group(tf.assign_add(counter, 1),
                         tf.assign_add(global_step, 1)))
