"""Trains your own tf.compat.v1 model with a learned optimizer.

The model here is a small two-layer classifier of Gaussian blobs, written
the way a user would write any TF1-style model; the only learned-optimizer
lines are `load_learned_optimizer` and `minimize`.

  python examples/train_with_learned_optimizer.py \
      --checkpoint=../shared/data/published/l2o-scale-regularize-train/hess_cl_mt

--checkpoint takes a train_dir, a log directory (its latest checkpoint) or a
checkpoint prefix such as .../model.ckpt-0.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

import graph_mode  # pylint: disable=g-import-not-at-top,wrong-import-position

graph_mode.enable()

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

from optimizer import checkpoints  # pylint: disable=g-import-not-at-top,wrong-import-position


def make_blobs(num_samples=2000, num_classes=4, dim=8, seed=0):
  """Gaussian blobs: (float32 features [N, dim], int32 labels [N])."""
  rng = np.random.RandomState(seed)
  centers = 2. * rng.randn(num_classes, dim)
  labels = rng.randint(num_classes, size=num_samples)
  features = centers[labels] + rng.randn(num_samples, dim)
  return features.astype(np.float32), labels.astype(np.int32)


def build_model(features, labels, num_classes, hidden=32):
  """The user's model: dense-tanh-dense softmax classifier; returns loss."""
  dim = features.get_shape().as_list()[1]
  init = tf.glorot_uniform_initializer(seed=1)
  with tf.variable_scope("my_model"):
    w1 = tf.get_variable("w1", [dim, hidden], initializer=init)
    b1 = tf.get_variable("b1", [hidden], initializer=tf.zeros_initializer())
    w2 = tf.get_variable("w2", [hidden, num_classes], initializer=init)
    b2 = tf.get_variable("b2", [num_classes],
                         initializer=tf.zeros_initializer())
  logits = tf.matmul(tf.tanh(tf.matmul(features, w1) + b1), w2) + b2
  return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=logits))


def train(checkpoint, steps=500, batch_size=64, seed=0, log=print):
  """Trains the model with the optimizer restored from `checkpoint`.

  Returns:
    The list of per-step minibatch losses.
  """
  data, targets = make_blobs(seed=seed)
  rng = np.random.RandomState(seed)
  with tf.Graph().as_default():
    x = tf.placeholder(tf.float32, [None, data.shape[1]])
    y = tf.placeholder(tf.int32, [None])
    loss = build_model(x, y, num_classes=int(targets.max()) + 1)
    optimizer = checkpoints.load_learned_optimizer(checkpoint,
                                                   random_seed=seed)
    train_op = optimizer.minimize(loss)
    losses = []
    with tf.Session() as sess:
      # Initialises the model and loads the optimizer's meta-parameters.
      sess.run(tf.global_variables_initializer())
      for step in range(steps):
        batch = rng.randint(len(data), size=batch_size)
        value, _ = sess.run([loss, train_op],
                            feed_dict={x: data[batch], y: targets[batch]})
        losses.append(float(value))
        if log and (step + 1) % 100 == 0:
          log("step %d/%d  loss %.4f (mean of the last 100)" %
              (step + 1, steps, np.mean(losses[-100:])))
  return losses


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--checkpoint", required=True,
                      help="train_dir, log directory or checkpoint prefix")
  parser.add_argument("--steps", type=int, default=500)
  args = parser.parse_args()
  try:
    losses = train(args.checkpoint, args.steps)
  except checkpoints.CheckpointError as e:
    sys.exit("train_with_learned_optimizer.py: %s" % e)
  print("loss: first 100 steps %.4f, last 100 steps %.4f" %
        (np.mean(losses[:100]), np.mean(losses[-100:])))


if __name__ == "__main__":
  main()
