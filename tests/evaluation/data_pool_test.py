"""Tests of evaluation.data_pool: in-graph data read back in chunks."""

from tests import test_util

import numpy as np
import tensorflow.compat.v1 as tf

from evaluation import data_pool
from problems import datasets


def _dataset(n, offset, label_shape=()):
  data = (offset + np.arange(n * 3, dtype=np.float32)).reshape(n, 3)
  labels = np.arange(n, dtype=np.int32).reshape((n,) + label_shape)
  return datasets.Dataset(data, labels)


def _read(pool, name, chunk_size, limit=None):
  """(data, labels, chunk sizes) of every chunk of `name`, concatenated."""
  data, labels, sizes = [], [], []
  with tf.Session() as sess:
    pool.initialize(sess)
    for feed, size in pool.chunks(name, chunk_size, limit):
      chunk_data, chunk_labels = sess.run([pool.data, pool.labels], feed)
      data.append(chunk_data)
      labels.append(chunk_labels)
      sizes.append(size)
  return np.concatenate(data), np.concatenate(labels), sizes


class DataPoolTest(test_util.TestCase):

  def test_chunks_read_back_each_data_set_in_order(self):
    first, second = _dataset(7, 0.), _dataset(5, 1000.)
    with tf.Graph().as_default():
      pool = data_pool.DataPool({"a": first, "b": second})
      self.assertEqual(pool.sizes, {"a": 7, "b": 5})
      data, labels, sizes = _read(pool, "b", chunk_size=2)
    self.assertAllEqual(data, second.data)
    self.assertAllEqual(labels, second.labels)
    self.assertEqual(sizes, [2, 2, 1])

  def test_a_shuffled_data_set_is_the_fixed_permutation_and_limit_cuts_it(self):
    dataset = _dataset(20, 0.)
    order = np.random.RandomState(data_pool.SUBSET_SEED).permutation(20)
    with tf.Graph().as_default():
      pool = data_pool.DataPool({"train": dataset}, shuffled=("train",))
      data, labels, sizes = _read(pool, "train", chunk_size=4, limit=6)
    self.assertAllEqual(data, dataset.data[order[:6]])
    self.assertAllEqual(labels, dataset.labels[order[:6]])
    self.assertEqual(sizes, [4, 2])

  def test_labels_keep_their_shape(self):
    dataset = _dataset(4, 0., label_shape=(1,))
    with tf.Graph().as_default():
      pool = data_pool.DataPool({"x": dataset})
      _, labels, _ = _read(pool, "x", chunk_size=3)
    self.assertEqual(labels.shape, (4, 1))

  def test_a_prepared_pool_is_reused_only_for_the_same_data_sets(self):
    dataset = _dataset(6, 0.)
    # Equal values in another object must not hit the cache of the first.
    other = datasets.Dataset(dataset.data * 2., dataset.labels)
    for candidate in (dataset, other, dataset):
      with tf.Graph().as_default():
        pool = data_pool.DataPool({"x": candidate}, shuffled=("x",))
        data, _, _ = _read(pool, "x", chunk_size=10)
      order = np.random.RandomState(data_pool.SUBSET_SEED).permutation(6)
      self.assertAllEqual(data, candidate.data[order])


if __name__ == "__main__":
  tf.test.main()
