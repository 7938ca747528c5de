"""Data sets copied once into a graph and read back in chunks.

The measurements of an evaluation run (held-out loss and accuracy over time,
the Hessian of the final solution) pass over whole data sets many times.
Feeding 55,000 images through `feed_dict` at every pass copies them each
time; a `DataPool` copies them once into a variable at initialisation, and a
pass then only feeds the bounds of each chunk.
"""

import collections

import numpy as np
import tensorflow.compat.v1 as tf

# Shuffled data sets are stored in the order of this seed's permutation, so
# their first k samples are the same fixed random subset in every run.
SUBSET_SEED = 0
# Pools of the last few data sets are prepared once: an evaluation builds a
# pool of the same splits for every run (seed and grid point), and preparing
# 70,000 images takes about a second.
_CACHE_SIZE = 2
_prepared = []


def _prepare(datasets, shuffled):
  """(data, labels, ranges) of the pool of `datasets`, reusing a recent one.

  A cache entry holds the Dataset objects themselves and matches only the
  very same objects, so it can never serve other data.
  """
  key = (tuple((name, dataset) for name, dataset in datasets.items()),
         tuple(sorted(shuffled)))
  for entry_key, value in _prepared:
    if (len(entry_key[0]) == len(key[0]) and entry_key[1] == key[1] and
        all(a[0] == b[0] and a[1] is b[1]
            for a, b in zip(entry_key[0], key[0]))):
      return value
  parts, ranges, start = [], collections.OrderedDict(), 0
  for name, dataset in datasets.items():
    index = slice(None)
    if name in shuffled:
      index = np.random.RandomState(SUBSET_SEED).permutation(dataset.size)
    parts.append((np.asarray(dataset.data, dtype=np.float32)[index],
                  np.asarray(dataset.labels).astype(np.int32)[index]))
    ranges[name] = (start, start + dataset.size)
    start += dataset.size
  value = (np.concatenate([p[0] for p in parts], 0),
           np.concatenate([p[1] for p in parts], 0), ranges)
  _prepared.insert(0, (key, value))
  del _prepared[_CACHE_SIZE:]
  return value


class DataPool(object):
  """Named data sets in one in-graph pool.

  Build it in the run's graph, call `initialize(sess)` once per session,
  then evaluate tensors built on `data` and `labels` with the feeds of
  `chunks(name, ...)`.

  Attributes:
    data: float32 tensor, the samples of the current chunk.
    labels: int32 tensor `(B, ...)`, their labels (shaped as the data
      sets' labels, which must agree).
    sizes: dict name -> number of samples.
  """

  def __init__(self, datasets, shuffled=(), name="data_pool"):
    """Builds the pool's variables (outside every collection).

    Args:
      datasets: dict name -> `datasets.Dataset` (same sample shape).
      shuffled: names whose samples are stored in the SUBSET_SEED
        permutation, so that `chunks(name, limit=k)` reads a fixed random
        subset.
      name: name scope of the ops.
    """
    data, labels, self._ranges = _prepare(datasets, shuffled)
    self.sizes = {key: stop - begin
                  for key, (begin, stop) in self._ranges.items()}
    self._values = (data, labels)
    with tf.name_scope(name):
      self._feeds = (tf.placeholder(tf.float32, self._values[0].shape),
                     tf.placeholder(tf.int32, self._values[1].shape))
      # Outside every collection: the run's initialisers leave them alone.
      data_pool, labels_pool = [
          tf.Variable(feed, trainable=False, collections=[])
          for feed in self._feeds]
      self._initializer = tf.group(data_pool.initializer,
                                   labels_pool.initializer)
      self._start = tf.placeholder(tf.int32, [], name="start")
      self._stop = tf.placeholder(tf.int32, [], name="stop")
      self.data = data_pool[self._start:self._stop]
      self.labels = labels_pool[self._start:self._stop]

  def initialize(self, sess):
    """Copies the data sets into the graph (once per session)."""
    sess.run(self._initializer, feed_dict=dict(zip(self._feeds,
                                                   self._values)))
    self._values = None  # The graph holds its own copy now.

  def chunks(self, name, chunk_size, limit=None):
    """The chunks of data set `name` (its first `limit` samples).

    Yields:
      (feed_dict selecting the chunk, number of samples in it).
    """
    start, stop = self._ranges[name]
    if limit is not None:
      stop = min(stop, start + limit)
    for begin in range(start, stop, chunk_size):
      end = min(begin + chunk_size, stop)
      yield {self._start: begin, self._stop: end}, end - begin
