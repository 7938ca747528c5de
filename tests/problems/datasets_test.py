"""Tests for problems/datasets.py: batching, synthetic generators, loaders.

The synthetic generators are checked against emulations of the original's
global-RNG call sequence (reference notes, problems.md section 6.3), written
here from that description. The image loaders run on small fake files written
into temporary folders, and on the real MNIST test split and Fashion-MNIST
where this machine has them. Nothing here touches the network: every download
URL is pointed at a file:// folder that does not exist.
"""

import os
import pathlib
import shutil
import tempfile
import unittest
from unittest import mock

import numpy as np
from sklearn import datasets as sk_datasets

from tests import test_util

import tensorflow.compat.v1 as tf  # pylint: disable=wrong-import-order

from problems import data_files  # pylint: disable=g-import-not-at-top
from problems import datasets  # pylint: disable=g-import-not-at-top

# Class counts of the real MNIST test split (shared/data/README.md).
_MNIST_TEST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974,
                            1009]
# The first ten labels of the real MNIST test split.
_MNIST_TEST_FIRST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def _reference_batch_indices(data_size, num_batches, batch_size):
  """The original's batching loop (section 6.2), on NumPy's global generator."""
  perm = np.arange(data_size)
  np.random.shuffle(perm)
  batches = []
  pos = 0
  for _ in range(num_batches):
    start = pos
    pos += batch_size
    if pos > data_size:
      np.random.shuffle(perm)
      start = 0
      pos = batch_size
    batches.append([int(i) for i in perm[start:pos]])
  return batches


def _reseed_global(random_seed):
  """The original's seeding: draw a seed if None, then reseed globally."""
  if random_seed is None:
    random_seed = np.random.randint(datasets.MAX_SEED)
  np.random.seed(random_seed)


def _original_random_binary(n_features, n_samples, random_seed):
  _reseed_global(random_seed)
  data = np.random.randint(2, size=(n_samples, n_features))
  return data.astype("float32"), np.zeros((n_samples, 1)).astype("int32")


def _original_random_symmetric(n_features, n_samples, random_seed):
  _reseed_global(random_seed)
  half = np.random.normal(size=(int(n_samples / 2), n_features))
  data = np.concatenate([half, -half], 0)
  return data.astype("float32"), np.zeros((n_samples, 1)).astype("int32")


def _original_random_mlp(n_features, n_samples, random_seed, n_layers=6,
                         width=20):
  _reseed_global(random_seed)
  x = np.random.normal(size=(n_samples, n_features))
  scale = np.sqrt(2) / np.sqrt(n_features)
  h = x
  n_in = n_features
  for _ in range(n_layers):
    weights = np.random.normal(size=(n_in, width)) * scale
    h = np.maximum(np.dot(h, weights), 0)
    n_in = width
  labels = np.where(h[:, 0] > 0, 1, 0)
  return x.astype("float32"), labels.astype("int32")


def _original_noisy_parity_class(n_samples, n_classes, n_context_ids,
                                 noise_prob, random_seed):
  np.random.seed(random_seed)
  ids = np.random.randint(0, n_classes, [n_samples, n_context_ids])
  noise = np.random.binomial(1, noise_prob, [n_samples])
  labels = (np.sum(ids, 1) + noise) % n_classes
  return ids.astype("float32"), labels.astype("int32")


def _global_state_equal(state_a, state_b):
  """Whether two `np.random.get_state()` tuples describe the same state."""
  return (state_a[0] == state_b[0] and np.array_equal(state_a[1], state_b[1])
          and tuple(state_a[2:]) == tuple(state_b[2:]))


def _expected_mnist_images(images):
  """The original's scaling: float32 pixels times 1/255, as (N, 28, 28, 1)."""
  scaled = np.multiply(images.astype(np.float32), 1.0 / 255.0)
  return scaled.reshape(scaled.shape + (1,))


_IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _read_raw_idx(folder):
  """The four raw IDX arrays in `folder` (plain or gzipped), by file stem."""
  raw = {}
  for stem in _IDX_STEMS:
    path = os.path.join(folder, stem)
    if not os.path.isfile(path):
      path += ".gz"
    raw[stem] = data_files.read_idx(path)
  return raw


def _has_real_fashion_mnist():
  return all(os.path.isfile(os.path.join(data_files.FASHION_MNIST_SYSTEM_DIR,
                                         stem + ".gz"))
             for stem in _IDX_STEMS)


def _no_such_folder_url(root):
  """A file:// folder URL (with trailing slash) below `root` that is absent."""
  return pathlib.Path(root, "no-such-mirror").as_uri() + "/"


class _GlobalRngTestCase(test_util.TestCase):
  """Restores NumPy's global generator after each test."""

  def setUp(self):
    super().setUp()
    saved = np.random.get_state()
    self.addCleanup(np.random.set_state, saved)


class BatchIndicesTest(_GlobalRngTestCase):

  def test_batch_indices_cover_each_epoch_without_repeats(self):
    rng = np.random.RandomState(3)
    batches = datasets.batch_indices(12, 9, 4, rng=rng)
    self.assertLen(batches, 9)
    for epoch in range(3):
      epoch_indices = sum(batches[3 * epoch:3 * epoch + 3], [])
      self.assertCountEqual(epoch_indices, range(12))

  def test_first_batches_are_disjoint_and_the_leftover_is_skipped(self):
    batches = datasets.batch_indices(10, 6, 3, rng=np.random.RandomState(0))
    first_epoch = sum(batches[:3], [])
    self.assertLen(first_epoch, 9)
    self.assertLen(set(first_epoch), 9)
    second_epoch = sum(batches[3:], [])
    self.assertLen(set(second_epoch), 9)
    for batch in batches:
      self.assertLen(batch, 3)
      for index in batch:
        self.assertIs(type(index), int)
        self.assertBetween(index, 0, 9)

  def test_fourth_batch_comes_from_a_reshuffled_permutation(self):
    batches = datasets.batch_indices(10, 4, 3, rng=np.random.RandomState(5))
    reference = np.random.RandomState(5)
    perm = reference.permutation(10)
    expected = [perm[0:3].tolist(), perm[3:6].tolist(), perm[6:9].tolist()]
    reference.shuffle(perm)
    expected.append(perm[0:3].tolist())
    self.assertEqual(batches, expected)

  def test_reshuffling_changes_the_order_between_epochs(self):
    firsts = []
    for seed in range(5):
      batches = datasets.batch_indices(10, 4, 3,
                                       rng=np.random.RandomState(seed))
      firsts.append(batches[0] != batches[3])
    self.assertTrue(any(firsts))

  def test_batch_larger_than_data_gives_fresh_whole_permutations(self):
    batches = datasets.batch_indices(5, 6, 8, rng=np.random.RandomState(1))
    self.assertLen(batches, 6)
    for batch in batches:
      self.assertLen(batch, 5)
      self.assertCountEqual(batch, range(5))
    self.assertGreater(len({tuple(b) for b in batches}), 1)

  def test_empty_data_and_zero_batch_size_give_empty_batches(self):
    self.assertEqual(datasets.batch_indices(0, 3, 0), [[], [], []])
    self.assertEqual(datasets.batch_indices(0, 0, 0), [])
    self.assertEqual(datasets.batch_indices(7, 0, 2), [])

  def test_explicit_random_state_is_reproducible_and_leaves_global_alone(self):
    before = np.random.get_state()
    first = datasets.batch_indices(20, 8, 6, rng=np.random.RandomState(42))
    second = datasets.batch_indices(20, 8, 6, rng=np.random.RandomState(42))
    other = datasets.batch_indices(20, 8, 6, rng=np.random.RandomState(43))
    self.assertTrue(_global_state_equal(before, np.random.get_state()))
    self.assertEqual(first, second)
    self.assertNotEqual(first, other)

  def test_default_rng_draws_from_global_numpy_like_the_original(self):
    for data_size, num_batches, batch_size in [(10, 7, 3), (6, 5, 9),
                                               (50, 12, 16), (0, 2, 0)]:
      np.random.seed(2024)
      got = datasets.batch_indices(data_size, num_batches, batch_size)
      after_got = np.random.random_sample(4)
      np.random.seed(2024)
      expected = _reference_batch_indices(data_size, num_batches, batch_size)
      after_expected = np.random.random_sample(4)
      self.assertEqual(got, expected)
      # The same number of draws was consumed from the global stream.
      self.assertAllEqual(after_got, after_expected)


class DatasetTest(_GlobalRngTestCase):

  def test_size_is_the_number_of_samples(self):
    dataset = datasets.Dataset(np.zeros((7, 3), np.float32),
                               np.zeros((7,), np.int32))
    self.assertEqual(dataset.size, 7)
    data, labels = dataset
    self.assertEqual(data.shape, (7, 3))
    self.assertEqual(labels.shape, (7,))

  def test_batch_indices_rejects_mismatched_data_and_labels(self):
    dataset = datasets.Dataset(np.zeros((5, 2), np.float32),
                               np.zeros((4,), np.int32))
    with self.assertRaises(ValueError):
      dataset.batch_indices(2, 2)

  def test_method_matches_the_module_function(self):
    dataset = datasets.Dataset(np.zeros((11, 2), np.float32),
                               np.zeros((11, 1), np.int32))
    got = dataset.batch_indices(5, 4, rng=np.random.RandomState(8))
    expected = datasets.batch_indices(11, 5, 4, rng=np.random.RandomState(8))
    self.assertEqual(got, expected)
    np.random.seed(9)
    got_global = dataset.batch_indices(5, 4)
    np.random.seed(9)
    self.assertEqual(got_global, _reference_batch_indices(11, 5, 4))

  def test_empty_dataset_has_size_zero_and_empty_batches(self):
    self.assertEqual(datasets.EMPTY_DATASET.size, 0)
    self.assertEqual(datasets.EMPTY_DATASET.data.dtype, np.float32)
    self.assertEqual(datasets.EMPTY_DATASET.labels.dtype, np.int32)
    self.assertEqual(datasets.EMPTY_DATASET.batch_indices(3, 0), [[], [], []])


class SyntheticGeneratorTest(_GlobalRngTestCase):

  def _assert_dataset_equal(self, dataset, expected_data, expected_labels):
    self.assertEqual(dataset.data.dtype, np.float32)
    self.assertEqual(dataset.labels.dtype, np.int32)
    self.assertAllEqual(dataset.data, expected_data)
    self.assertAllEqual(dataset.labels, expected_labels)

  def test_random_binary_matches_the_original_for_a_seed(self):
    dataset = datasets.random_binary(7, 30, random_seed=123)
    self.assertEqual(dataset.data.shape, (30, 7))
    self.assertEqual(dataset.labels.shape, (30, 1))
    self.assertCountEqual(np.unique(dataset.data), [0.0, 1.0])
    self._assert_dataset_equal(dataset,
                               *_original_random_binary(7, 30, 123))

  def test_random_symmetric_matches_the_original_for_a_seed(self):
    dataset = datasets.random_symmetric(5, 40, random_seed=77)
    self.assertEqual(dataset.data.shape, (40, 5))
    self.assertEqual(dataset.labels.shape, (40, 1))
    self._assert_dataset_equal(dataset,
                               *_original_random_symmetric(5, 40, 77))

  def test_random_mlp_matches_the_original_for_a_seed(self):
    dataset = datasets.random_mlp(10, 200, random_seed=5)
    self.assertEqual(dataset.data.shape, (200, 10))
    self.assertEqual(dataset.labels.shape, (200,))
    self._assert_dataset_equal(dataset, *_original_random_mlp(10, 200, 5))
    self.assertCountEqual(np.unique(dataset.labels), [0, 1])

  def test_random_mlp_honours_depth_and_width(self):
    dataset = datasets.random_mlp(4, 64, random_seed=11, n_layers=2, width=3)
    self._assert_dataset_equal(
        dataset, *_original_random_mlp(4, 64, 11, n_layers=2, width=3))

  def test_noisy_parity_class_matches_the_original_for_a_seed(self):
    dataset = datasets.noisy_parity_class(50, n_classes=3, n_context_ids=4,
                                          noise_prob=0.3, random_seed=9)
    self.assertEqual(dataset.data.shape, (50, 4))
    self.assertEqual(dataset.labels.shape, (50,))
    self._assert_dataset_equal(
        dataset, *_original_noisy_parity_class(50, 3, 4, 0.3, 9))

  def test_seeded_generators_leave_the_global_rng_untouched(self):
    np.random.seed(31)
    before = np.random.get_state()
    datasets.random_binary(3, 10, random_seed=1)
    datasets.random_symmetric(3, 10, random_seed=1)
    datasets.random_mlp(3, 10, random_seed=1)
    datasets.noisy_parity_class(10, random_seed=1)
    datasets.random(3, 10, random_seed=1)
    self.assertTrue(_global_state_equal(before, np.random.get_state()))

  def test_noisy_parity_without_seed_leaves_the_global_rng_untouched(self):
    np.random.seed(32)
    before = np.random.get_state()
    dataset = datasets.noisy_parity_class(10)
    self.assertEqual(dataset.data.shape, (10, 5))
    self.assertTrue(_global_state_equal(before, np.random.get_state()))

  def test_unseeded_generators_draw_their_seed_from_the_global_rng(self):
    cases = [
        (datasets.random_binary, _original_random_binary),
        (datasets.random_symmetric, _original_random_symmetric),
        (datasets.random_mlp, _original_random_mlp),
    ]
    for generator, original in cases:
      np.random.seed(555)
      first = generator(6, 20)
      np.random.seed(555)
      second = generator(6, 20)
      np.random.seed(555)
      expected_data, expected_labels = original(6, 20, None)
      self.assertAllEqual(first.data, second.data)
      self._assert_dataset_equal(first, expected_data, expected_labels)

  def test_unseeded_generators_differ_between_calls(self):
    np.random.seed(556)
    first = datasets.random_symmetric(4, 8)
    second = datasets.random_symmetric(4, 8)
    self.assertNotAllClose(first.data, second.data)

  def test_random_symmetric_columns_sum_to_zero(self):
    dataset = datasets.random_symmetric(6, 100, random_seed=4)
    self.assertAllEqual(dataset.data[50:], -dataset.data[:50])
    self.assertAllClose(dataset.data.sum(axis=0), np.zeros(6), atol=1e-5)
    self.assertGreater(np.abs(dataset.data).sum(), 0.0)

  def test_random_symmetric_rejects_odd_sample_counts(self):
    with self.assertRaises(ValueError):
      datasets.random_symmetric(3, 11, random_seed=0)

  def test_noisy_parity_labels_are_the_id_sum_except_on_noisy_samples(self):
    for n_classes in (2, 3):
      dataset = datasets.noisy_parity_class(
          20000, n_classes=n_classes, n_context_ids=5, noise_prob=0.25,
          random_seed=17)
      ids = dataset.data.astype(np.int64)
      self.assertAllEqual(dataset.data, ids)
      self.assertGreaterEqual(ids.min(), 0)
      self.assertLess(ids.max(), n_classes)
      parity = ids.sum(axis=1) % n_classes
      flipped = dataset.labels != parity
      # Where they differ, the noise added exactly one.
      self.assertAllEqual(dataset.labels[flipped],
                          (parity[flipped] + 1) % n_classes)
      self.assertBetween(float(np.mean(flipped)), 0.23, 0.27)

  def test_noisy_parity_without_noise_is_exact_parity(self):
    dataset = datasets.noisy_parity_class(500, n_classes=4, noise_prob=0.0,
                                          random_seed=2)
    parity = dataset.data.astype(np.int64).sum(axis=1) % 4
    self.assertAllEqual(dataset.labels, parity)

  def test_random_classification_has_requested_shapes_and_classes(self):
    dataset = datasets.random(8, 300, n_classes=3, sep=2.0, random_seed=6)
    self.assertEqual(dataset.data.shape, (300, 8))
    self.assertEqual(dataset.labels.shape, (300,))
    self.assertEqual(dataset.data.dtype, np.float32)
    self.assertEqual(dataset.labels.dtype, np.int32)
    self.assertCountEqual(np.unique(dataset.labels), [0, 1, 2])

  def test_random_classification_is_reproducible_per_seed(self):
    first = datasets.random(5, 120, random_seed=21)
    second = datasets.random(5, 120, random_seed=21)
    other = datasets.random(5, 120, random_seed=22)
    self.assertAllEqual(first.data, second.data)
    self.assertAllEqual(first.labels, second.labels)
    self.assertNotAllClose(first.data, other.data)

  def test_random_classification_uses_the_original_sklearn_arguments(self):
    x, y = sk_datasets.make_classification(
        n_samples=90, n_features=4, n_informative=4, n_redundant=0,
        n_repeated=0, n_classes=2, n_clusters_per_class=2, weights=None,
        flip_y=0.01, class_sep=1.5, hypercube=True, shift=0.0, scale=1.0,
        shuffle=True, random_state=13)
    dataset = datasets.random(4, 90, n_classes=2, sep=1.5, random_seed=13)
    self.assertAllEqual(dataset.data, x.astype(np.float32))
    self.assertAllEqual(dataset.labels, y.astype(np.int32))


class _DataTestCase(test_util.TestCase):
  """Points every download URL at a missing local folder, never the network."""

  def setUp(self):
    super().setUp()
    self.nowhere = self.make_tempdir()
    base = _no_such_folder_url(self.nowhere)
    for name, value in [("MNIST_URL", base), ("FASHION_MNIST_URL", base),
                        ("CIFAR10_URL", base + "cifar-10-python.tar.gz")]:
      patcher = mock.patch.object(data_files, name, value)
      patcher.start()
      self.addCleanup(patcher.stop)


class MnistTest(_DataTestCase):

  def _fake_data_dir(self, gzipped=False, seed=0):
    root = self.make_tempdir()
    written = test_util.write_fake_mnist(
        os.path.join(root, "mnist"), num_train=5006, num_test=9, seed=seed,
        gzipped=gzipped)
    return root, written

  def test_train_split_drops_the_first_5000_images(self):
    root, written = self._fake_data_dir()
    dataset = datasets.mnist(train=True, data_dir=root, download=False)
    images, labels = written["train"]
    self.assertEqual(dataset.data.shape, (6, 28, 28, 1))
    self.assertEqual(dataset.data.dtype, np.float32)
    self.assertEqual(dataset.labels.shape, (6,))
    self.assertEqual(dataset.labels.dtype, np.int32)
    self.assertAllEqual(dataset.data, _expected_mnist_images(images[5000:]))
    self.assertAllEqual(dataset.labels, labels[5000:])
    self.assertAllInRange(dataset.data, 0.0, 1.0)

  def test_test_split_is_complete(self):
    root, written = self._fake_data_dir()
    dataset = datasets.mnist(train=False, data_dir=root, download=False)
    images, labels = written["t10k"]
    self.assertEqual(dataset.data.shape, (9, 28, 28, 1))
    self.assertAllEqual(dataset.data, _expected_mnist_images(images))
    self.assertAllEqual(dataset.labels, labels)

  def test_gzipped_files_load_like_plain_ones(self):
    plain_root, plain_written = self._fake_data_dir(gzipped=False, seed=4)
    gz_root, _ = self._fake_data_dir(gzipped=True, seed=4)
    self.assertTrue(os.path.isfile(
        os.path.join(gz_root, "mnist", "t10k-images-idx3-ubyte.gz")))
    for train in (True, False):
      plain = datasets.mnist(train=train, data_dir=plain_root, download=False)
      gzipped = datasets.mnist(train=train, data_dir=gz_root, download=False)
      self.assertAllEqual(plain.data, gzipped.data)
      self.assertAllEqual(plain.labels, gzipped.labels)
    self.assertAllEqual(gzipped.labels, plain_written["t10k"][1])

  def test_data_dir_argument_beats_environment_beats_default(self):
    arg_root = self.make_tempdir()
    env_root = self.make_tempdir()
    cache_root = self.make_tempdir()
    default_root = os.path.join(cache_root, "l2o-scale", "data")
    labels = {}
    for name, root, seed in [("arg", arg_root, 1), ("env", env_root, 2),
                             ("default", default_root, 3)]:
      written = test_util.write_fake_mnist(
          os.path.join(root, "mnist"), num_train=0, num_test=12, seed=seed)
      labels[name] = written["t10k"][1]
    self.assertNotAllClose(labels["arg"], labels["env"])
    self.assertNotAllClose(labels["env"], labels["default"])

    with mock.patch.dict(os.environ, {data_files.DATA_DIR_ENV: env_root,
                                      "XDG_CACHE_HOME": cache_root}):
      from_arg = datasets.mnist(train=False, data_dir=arg_root, download=False)
      from_env = datasets.mnist(train=False, download=False)
    with mock.patch.dict(os.environ, {"XDG_CACHE_HOME": cache_root}):
      os.environ.pop(data_files.DATA_DIR_ENV, None)
      from_default = datasets.mnist(train=False, download=False)
    self.assertAllEqual(from_arg.labels, labels["arg"])
    self.assertAllEqual(from_env.labels, labels["env"])
    self.assertAllEqual(from_default.labels, labels["default"])

  def test_real_mnist_test_split_has_the_published_class_counts(self):
    shared = test_util.shared_data_dir()
    if shared is None or not os.path.isfile(
        os.path.join(shared, "mnist", "t10k-images-idx3-ubyte.gz")):
      self.skipTest("the shared real MNIST test split is not on this machine")
    dataset = datasets.mnist(train=False, data_dir=shared, download=False)
    self.assertEqual(dataset.data.shape, (10000, 28, 28, 1))
    self.assertEqual(dataset.data.dtype, np.float32)
    self.assertEqual(dataset.labels.dtype, np.int32)
    self.assertAllEqual(np.bincount(dataset.labels, minlength=10),
                        _MNIST_TEST_CLASS_COUNTS)
    self.assertAllEqual(dataset.labels[:10], _MNIST_TEST_FIRST_LABELS)
    self.assertEqual(dataset.data.min(), 0.0)
    self.assertEqual(dataset.data.max(), 1.0)


class FashionMnistTest(_DataTestCase):

  def test_loads_fake_files_from_the_data_dir(self):
    root = self.make_tempdir()
    written = test_util.write_fake_mnist(
        os.path.join(root, "fashion-mnist"), num_train=5004, num_test=7,
        seed=8)
    train = datasets.fashion_mnist(train=True, data_dir=root, download=False)
    test = datasets.fashion_mnist(train=False, data_dir=root, download=False)
    self.assertAllEqual(train.data,
                        _expected_mnist_images(written["train"][0][5000:]))
    self.assertAllEqual(train.labels, written["train"][1][5000:])
    self.assertAllEqual(test.data, _expected_mnist_images(written["t10k"][0]))
    self.assertAllEqual(test.labels, written["t10k"][1])

  def test_falls_back_to_the_debian_package_folder(self):
    if not os.path.isfile(os.path.join(data_files.FASHION_MNIST_SYSTEM_DIR,
                                       "train-labels-idx1-ubyte.gz")):
      self.skipTest("dataset-fashion-mnist is not installed")
    root = self.make_tempdir()
    test = datasets.fashion_mnist(train=False, data_dir=root, download=False)
    self.assertEqual(test.data.shape, (10000, 28, 28, 1))
    self.assertAllEqual(np.bincount(test.labels, minlength=10), [1000] * 10)
    self.assertAllInRange(test.data, 0.0, 1.0)
    train = datasets.fashion_mnist(train=True, data_dir=root, download=False)
    self.assertEqual(train.data.shape, (55000, 28, 28, 1))
    self.assertEqual(train.labels.shape, (55000,))
    self.assertEqual(test_util.file_tree(root), [])


class Cifar10Test(_DataTestCase):

  def setUp(self):
    super().setUp()
    self.root = self.make_tempdir()
    self.written = test_util.write_fake_cifar10(
        os.path.join(self.root, data_files.CIFAR10_FOLDER), per_batch=3,
        seed=12)

  def _expected(self, names):
    images = np.concatenate([self.written[n][0] for n in names], 0)
    labels = np.concatenate([self.written[n][1] for n in names], 0)
    nhwc = np.transpose(images, (0, 2, 3, 1)).astype(np.float32) / 255
    return nhwc, labels.reshape(-1, 1).astype(np.int32)

  def test_train_split_concatenates_the_five_batches_in_order(self):
    dataset = datasets.cifar10(train=True, data_dir=self.root, download=False)
    expected_images, expected_labels = self._expected(
        ["data_batch_%d" % k for k in range(1, 6)])
    self.assertEqual(dataset.data.shape, (15, 32, 32, 3))
    self.assertEqual(dataset.data.dtype, np.float32)
    self.assertEqual(dataset.labels.shape, (15, 1))
    self.assertEqual(dataset.labels.dtype, np.int32)
    self.assertAllEqual(dataset.data, expected_images)
    self.assertAllEqual(dataset.labels, expected_labels)

  def test_images_are_transposed_to_nhwc(self):
    dataset = datasets.cifar10(train=False, data_dir=self.root, download=False)
    images = self.written["test_batch"][0]
    # Pixel (row 4, column 7) of channel 2 of image 1.
    self.assertEqual(dataset.data[1, 4, 7, 2],
                     np.float32(images[1, 2, 4, 7]) / 255)
    self.assertEqual(dataset.data[2, 31, 0, 0],
                     np.float32(images[2, 0, 31, 0]) / 255)

  def test_test_split_is_the_test_batch(self):
    dataset = datasets.cifar10(train=False, data_dir=self.root, download=False)
    expected_images, expected_labels = self._expected(["test_batch"])
    self.assertEqual(dataset.data.shape, (3, 32, 32, 3))
    self.assertAllEqual(dataset.data, expected_images)
    self.assertAllEqual(dataset.labels, expected_labels)


class _SplitsChecks(object):
  """Checks of a Splits against the raw IDX arrays it was cut from."""

  def assert_splits_are_the_raw_files_cut_at_5000(self, splits, raw):
    held = datasets.MNIST_VALIDATION_SIZE
    train_images = raw["train-images-idx3-ubyte"]
    train_labels = raw["train-labels-idx1-ubyte"]
    self.assertIsInstance(splits, datasets.Splits)
    for dataset in splits:
      self.assertIsInstance(dataset, datasets.Dataset)
      self.assertEqual(dataset.data.dtype, np.float32)
      self.assertEqual(dataset.labels.dtype, np.int32)
      self.assertEqual(dataset.data.shape[1:], (28, 28, 1))
      self.assertEqual(dataset.labels.shape, (dataset.size,))
    self.assertEqual(splits.train.size + splits.validation.size,
                     len(train_images))
    self.assertAllEqual(splits.train.data,
                        _expected_mnist_images(train_images[held:]))
    self.assertAllEqual(splits.train.labels, train_labels[held:])
    self.assertAllEqual(splits.validation.data,
                        _expected_mnist_images(train_images[:held]))
    self.assertAllEqual(splits.validation.labels, train_labels[:held])
    self.assertAllEqual(splits.test.data,
                        _expected_mnist_images(raw["t10k-images-idx3-ubyte"]))
    self.assertAllEqual(splits.test.labels, raw["t10k-labels-idx1-ubyte"])

  def assert_datasets_equal(self, got, expected):
    self.assertEqual(got.data.dtype, expected.data.dtype)
    self.assertEqual(got.labels.dtype, expected.labels.dtype)
    self.assertEqual(got.data.shape, expected.data.shape)
    self.assertEqual(got.labels.shape, expected.labels.shape)
    self.assertAllEqual(got.data, expected.data)
    self.assertAllEqual(got.labels, expected.labels)


class MnistSplitsTest(_SplitsChecks, _DataTestCase):

  def setUp(self):
    super().setUp()
    self.root = self.make_tempdir()
    self.folder = os.path.join(self.root, "mnist")
    test_util.write_fake_mnist(self.folder, num_train=5007, num_test=11,
                               seed=21, gzipped=True)

  def test_splits_field_names_are_train_validation_test(self):
    self.assertEqual(datasets.Splits._fields, ("train", "validation", "test"))

  def test_splits_have_the_documented_sizes(self):
    splits = datasets.mnist_splits(data_dir=self.root, download=False)
    self.assertEqual((splits.train.size, splits.validation.size,
                      splits.test.size), (7, 5000, 11))

  def test_splits_are_the_training_file_cut_at_5000_and_the_test_file(self):
    splits = datasets.mnist_splits(data_dir=self.root, download=False)
    self.assert_splits_are_the_raw_files_cut_at_5000(
        splits, _read_raw_idx(self.folder))

  def test_train_and_test_equal_the_single_split_loaders(self):
    splits = datasets.mnist_splits(data_dir=self.root, download=False)
    self.assert_datasets_equal(
        splits.train,
        datasets.mnist(train=True, data_dir=self.root, download=False))
    self.assert_datasets_equal(
        splits.test,
        datasets.mnist(train=False, data_dir=self.root, download=False))

  def test_each_idx_file_is_read_once(self):
    with mock.patch.object(data_files, "read_idx",
                           wraps=data_files.read_idx) as read_idx:
      datasets.mnist_splits(data_dir=self.root, download=False)
    paths = [call.args[0] for call in read_idx.call_args_list]
    self.assertCountEqual([os.path.basename(p) for p in paths],
                          [stem + ".gz" for stem in _IDX_STEMS])

  def test_fashion_mnist_splits_read_the_data_dir_first(self):
    folder = os.path.join(self.root, "fashion-mnist")
    test_util.write_fake_mnist(folder, num_train=5003, num_test=4, seed=22)
    splits = datasets.fashion_mnist_splits(data_dir=self.root,
                                           download=False)
    self.assert_splits_are_the_raw_files_cut_at_5000(splits,
                                                     _read_raw_idx(folder))
    self.assertEqual(splits.test.size, 4)

  def test_a_training_file_of_only_the_hold_out_is_rejected(self):
    root = self.make_tempdir()
    test_util.write_fake_mnist(os.path.join(root, "mnist"),
                               num_train=datasets.MNIST_VALIDATION_SIZE,
                               num_test=3)
    with self.assertRaisesRegex(ValueError, "5000 images"):
      datasets.mnist_splits(data_dir=root, download=False)

  def test_training_files_that_are_the_test_files_are_rejected(self):
    # The stand-in of ../shared/data (train-* linked to t10k-*) must not
    # pass for held-out data: its "test" split would be trained on.
    root = self.make_tempdir()
    folder = os.path.join(root, "mnist")
    test_util.write_fake_mnist(folder, num_train=5004, num_test=5004)
    for kind in ("images-idx3", "labels-idx1"):
      os.remove(os.path.join(folder, "train-%s-ubyte" % kind))
      os.symlink(os.path.join(folder, "t10k-%s-ubyte" % kind),
                 os.path.join(folder, "train-%s-ubyte" % kind))
    with self.assertRaisesRegex(ValueError, "are the test images"):
      datasets.mnist_splits(data_dir=root, download=False)

  def test_missing_training_files_are_all_named(self):
    os.remove(os.path.join(self.folder, "train-images-idx3-ubyte.gz"))
    os.remove(os.path.join(self.folder, "train-labels-idx1-ubyte.gz"))
    with self.assertRaises(data_files.DataNotFoundError) as caught:
      datasets.mnist_splits(data_dir=self.root, download=False)
    message = str(caught.exception)
    self.assertIn("train-images-idx3-ubyte", message)
    self.assertIn("train-labels-idx1-ubyte", message)
    self.assertNotIn("t10k-images-idx3-ubyte[", message)


class RealFashionMnistSplitsTest(_SplitsChecks, test_util.TestCase):
  """The real Fashion-MNIST (Debian's dataset-fashion-mnist), loaded once."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    if not _has_real_fashion_mnist():
      raise unittest.SkipTest("dataset-fashion-mnist is not installed")
    # An empty data_dir: the loaders fall back to the Debian folder.
    cls._root = tempfile.mkdtemp(prefix="l2o-test-")
    cls.splits = datasets.fashion_mnist_splits(data_dir=cls._root,
                                               download=False)
    cls.raw = _read_raw_idx(data_files.FASHION_MNIST_SYSTEM_DIR)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls._root, ignore_errors=True)
    super().tearDownClass()

  def test_splits_have_55000_5000_10000_images(self):
    self.assertEqual(self.splits.train.data.shape, (55000, 28, 28, 1))
    self.assertEqual(self.splits.validation.data.shape, (5000, 28, 28, 1))
    self.assertEqual(self.splits.test.data.shape, (10000, 28, 28, 1))
    self.assertEqual(self.splits.train.labels.shape, (55000,))
    self.assertAllEqual(np.bincount(self.splits.test.labels, minlength=10),
                        [1000] * 10)

  def test_splits_are_the_training_file_cut_at_5000_and_the_test_file(self):
    self.assert_splits_are_the_raw_files_cut_at_5000(self.splits, self.raw)

  def test_train_and_test_equal_the_single_split_loaders(self):
    self.assert_datasets_equal(
        self.splits.train,
        datasets.fashion_mnist(train=True, data_dir=self._root,
                               download=False))
    self.assert_datasets_equal(
        self.splits.test,
        datasets.fashion_mnist(train=False, data_dir=self._root,
                               download=False))
    self.assertEqual(test_util.file_tree(self._root), [])


class MissingDataTest(_DataTestCase):

  def _assert_missing(self, load, data_dir, expected_in_message):
    scratch = self.make_tempdir()
    before = test_util.file_tree(data_dir)
    with mock.patch.object(tempfile, "tempdir", scratch):
      with self.assertRaises(data_files.DataNotFoundError) as caught:
        load()
    message = str(caught.exception)
    for text in expected_in_message:
      self.assertIn(text, message)
    self.assertIn(data_files.DATA_DIR_ENV, message)
    self.assertEqual(test_util.file_tree(data_dir), before)
    self.assertEqual(test_util.file_tree(scratch), [])
    return message

  def test_mnist_without_files_and_downloads_names_what_is_missing(self):
    root = self.make_tempdir()
    self._assert_missing(
        lambda: datasets.mnist(train=True, data_dir=root, download=False),
        root, ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               os.path.join(root, "mnist"), "<data_dir>/mnist/"])

  def test_mnist_failed_download_writes_nothing(self):
    root = self.make_tempdir()
    self._assert_missing(
        lambda: datasets.mnist(train=True, data_dir=root, download=True),
        root, ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "<data_dir>/mnist/"])

  def test_mnist_with_only_images_names_only_the_labels(self):
    root = self.make_tempdir()
    folder = os.path.join(root, "mnist")
    os.makedirs(folder)
    data_files.write_idx(os.path.join(folder, "t10k-images-idx3-ubyte"),
                         np.zeros((2, 28, 28), np.uint8))
    message = self._assert_missing(
        lambda: datasets.mnist(train=False, data_dir=root, download=True),
        root, ["t10k-labels-idx1-ubyte"])
    self.assertNotIn("t10k-images-idx3-ubyte[", message)

  def test_cifar10_without_files_and_downloads_names_what_is_missing(self):
    root = self.make_tempdir()
    self._assert_missing(
        lambda: datasets.cifar10(train=True, data_dir=root, download=False),
        root, ["data_batch_1", "data_batch_5", "test_batch",
               "<data_dir>/cifar-10-batches-py/"])

  def test_cifar10_failed_download_writes_nothing(self):
    root = self.make_tempdir()
    self._assert_missing(
        lambda: datasets.cifar10(train=False, data_dir=root, download=True),
        root, ["data_batch_1", "test_batch",
               "<data_dir>/cifar-10-batches-py/"])

  def test_data_dir_that_does_not_exist_is_not_created(self):
    parent = self.make_tempdir()
    root = os.path.join(parent, "absent")
    self._assert_missing(
        lambda: datasets.mnist(train=False, data_dir=root, download=True),
        parent, ["t10k-images-idx3-ubyte"])
    self.assertFalse(os.path.exists(root))


if __name__ == "__main__":
  tf.test.main()
