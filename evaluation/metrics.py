"""Loss and accuracy of an optimizee on whole data splits during evaluation.

For problem sets with held-out data (`problems.datasets.Splits`), an
evaluation records, every `every` steps and after the last one, the loss and
the accuracy on the training split, the validation split and the test split.
The splits live in a `data_pool.DataPool`, so a recording feeds no data,
and it evaluates them in chunks, so memory stays bounded on conv nets.

Accuracy is the share of samples whose predicted class is the label: the
argmax of the logits (for a 2-class problem, whose loss is the sigmoid
cross-entropy of the first logit column: that logit > 0).
`FullyConnected.accuracy` is not used: like the original it applies the
network's activation to the logits first, which for a ReLU net turns every
all-negative row into class 0.
"""

import collections

import numpy as np
import tensorflow.compat.v1 as tf

SPLITS = ("train", "validation", "test")
DEFAULT_POINTS = 50


class Config(collections.namedtuple("Config", [
    "splits", "every", "subset", "chunk_size"])):
  """What to record.

  Attributes:
    splits: dict split name ("train", "validation", "test") -> Dataset.
    every: steps between recordings; step 0 (before the first update) and
      the last step are always recorded.
    subset: if set, the intermediate points measure each split on a fixed
      random subset of at most this many samples (the same for every run);
      the final point always uses every sample.
    chunk_size: samples per evaluated chunk.
  """

  __slots__ = ()


def default_interval(num_steps, points=DEFAULT_POINTS):
  """The interval giving about `points` evenly spaced recordings."""
  return max(1, int(round(num_steps / float(points))))


def recording_steps(num_steps, every):
  """Steps recorded: 0, every, 2 every, ... and `num_steps`."""
  steps = list(range(0, num_steps, every))
  if not steps or steps[-1] != num_steps:
    steps.append(num_steps)
  return steps


def predictions(logits):
  """Predicted class ids, int32 (B,), from logits (B, n_classes)."""
  if logits.get_shape()[1] == 2:
    return tf.cast(logits[:, 0] > 0., tf.int32)
  return tf.cast(tf.argmax(logits, 1), tf.int32)


class SplitMetrics(object):
  """The ops measuring one optimizee on its splits, and their results.

  Build it in the run's graph before the session starts and initialise its
  pool; then call `record(sess, step)` at the recording steps and
  `final(sess)` after the last one.
  """

  def __init__(self, problem, params, pool, config):
    """Builds the chunk ops.

    Args:
      problem: a classifier (`SoftmaxClassifier`): `objective` is the
        batch-mean loss, `inference` gives the logits.
      params: the parameter tensors to measure (for attention, the true
        parameters).
      pool: a `data_pool.DataPool` holding `config.splits` under their
        names, shuffled (their first samples are the fixed subsets of the
        intermediate points).
      config: a Config.
    """
    self._config = config
    self._pool = pool
    self.names = [n for n in SPLITS if n in config.splits]
    self.names += [n for n in config.splits if n not in self.names]
    self.subset_size = int(config.subset) if config.subset else None
    with tf.name_scope("split_metrics"):
      count = tf.cast(tf.shape(pool.labels)[0], tf.float32)
      self._loss_sum = problem.objective(params, pool.data, pool.labels) * count
      self._correct = tf.reduce_sum(tf.cast(
          tf.equal(predictions(problem.inference(params, pool.data)),
                   tf.reshape(pool.labels, [-1])), tf.float32))
    self.history = collections.OrderedDict([("steps", [])])
    for name in self.names:
      self.history[name + "_loss"] = []
      self.history[name + "_accuracy"] = []

  def _measure(self, sess, whole):
    values = collections.OrderedDict()
    for name in self.names:
      limit = None if whole else self.subset_size
      loss = correct = total = 0.
      for feed, size in self._pool.chunks(name, self._config.chunk_size,
                                          limit):
        chunk_loss, chunk_correct = sess.run([self._loss_sum, self._correct],
                                             feed_dict=feed)
        loss += float(chunk_loss)
        correct += float(chunk_correct)
        total += size
      values[name + "_loss"] = loss / total
      values[name + "_accuracy"] = correct / total
    return values

  def record(self, sess, step):
    """Measures the intermediate point `step` into `history`."""
    self.history["steps"].append(int(step))
    for key, value in self._measure(sess, whole=False).items():
      self.history[key].append(value)

  def final(self, sess):
    """Loss and accuracy on every sample of every split."""
    return self._measure(sess, whole=True)
