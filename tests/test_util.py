"""Shared helpers for the tests: graph mode, fixtures and numeric checks.

Importing this module switches TensorFlow to graph mode (via graph_mode), so
every test module imports it before anything else of TensorFlow's.
"""

import errno
import os
import shutil
import subprocess
import tempfile

import numpy as np

import graph_mode

graph_mode.enable()

import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

from problems import data_files  # pylint: disable=wrong-import-position

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def shared_data_dir():
  """The project's shared real-data folder (../shared/data), or None."""
  path = os.path.join(os.path.dirname(_REPO_ROOT), "shared", "data")
  return path if os.path.isdir(path) else None


def published_checkpoint():
  """The original authors' published HierarchicalRNN checkpoint, or None."""
  data = shared_data_dir()
  if data is None:
    return None
  path = os.path.join(data, "published", "l2o-scale-regularize-train",
                      "hess_cl_mt", "HierarchicalRNN_GRUCell_20_2",
                      "model.ckpt-0")
  return path if os.path.exists(path + ".index") else None


def write_fake_mnist(folder, num_train=5010, num_test=30, seed=0,
                     gzipped=False):
  """Writes small random MNIST-format IDX files into `folder`.

  The training split must exceed datasets.MNIST_VALIDATION_SIZE (5000)
  images, which the loader drops.

  Returns:
    dict split ("train"/"t10k") -> (images uint8 (N, 28, 28), labels (N,)).
  """
  rng = np.random.RandomState(seed)
  os.makedirs(folder, exist_ok=True)
  suffix = ".gz" if gzipped else ""
  written = {}
  for prefix, count in (("train", num_train), ("t10k", num_test)):
    images = rng.randint(0, 256, size=(count, 28, 28)).astype(np.uint8)
    labels = rng.randint(0, 10, size=(count,)).astype(np.uint8)
    data_files.write_idx(
        os.path.join(folder, prefix + "-images-idx3-ubyte" + suffix), images)
    data_files.write_idx(
        os.path.join(folder, prefix + "-labels-idx1-ubyte" + suffix), labels)
    written[prefix] = (images, labels)
  return written


def write_fake_cifar10(folder, per_batch=4, seed=0):
  """Writes tiny CIFAR-10 python batches into `folder`.

  Returns:
    dict batch name -> (images uint8 (N, 3, 32, 32), labels (N,)).
  """
  rng = np.random.RandomState(seed)
  os.makedirs(folder, exist_ok=True)
  written = {}
  for name in data_files.CIFAR10_TRAIN_BATCHES + (
      data_files.CIFAR10_TEST_BATCH,):
    images = rng.randint(0, 256, size=(per_batch, 3, 32, 32)).astype(np.uint8)
    labels = rng.randint(0, 10, size=(per_batch,))
    data_files.write_cifar_batch(os.path.join(folder, name), images, labels)
    written[name] = (images, labels)
  return written


def make_fake_data_dir(root):
  """A data_dir with fake MNIST and CIFAR-10 in the expected layout."""
  write_fake_mnist(os.path.join(root, "mnist"))
  write_fake_cifar10(os.path.join(root, data_files.CIFAR10_FOLDER))
  return root


def file_tree(root):
  """Every folder and file below `root`, as sorted relative paths."""
  entries = []
  for folder, dirs, files in os.walk(root):
    for name in dirs:
      entries.append(os.path.relpath(os.path.join(folder, name), root) + "/")
    for name in files:
      entries.append(os.path.relpath(os.path.join(folder, name), root))
  return sorted(entries)


def mount_small_disk(test, folder, size="1m"):
  """Mounts a tmpfs of `size` on `folder` until `test` ends, if allowed.

  A real full disk needs a small file system of its own; root may mount
  one. Where mounting is not allowed (no root, a sandbox or CI that
  forbids it) the caller simulates the full disk instead.

  Returns:
    Whether `folder` is now a tmpfs of that size.
  """
  try:
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", folder],
        capture_output=True, timeout=60)
  except (OSError, subprocess.SubprocessError):
    return False
  if result.returncode != 0:
    return False
  test.addCleanup(subprocess.run, ["umount", "-l", folder],
                  capture_output=True, timeout=60)
  return True


def fill_disk(folder):
  """Writes a file into `folder` until its file system is full.

  Returns:
    The file's path (remove it to free the space).
  """
  path = os.path.join(folder, "filler")
  block = b"\0" * 4096
  with open(path, "wb", buffering=0) as f:
    try:
      while f.write(block):
        pass
    except OSError as e:
      if e.errno != errno.ENOSPC:
        raise
  return path


def numeric_gradient(fn, x, eps=1e-3):
  """Central finite differences of scalar `fn` at float64 array `x`."""
  x = np.array(x, dtype=np.float64)
  grad = np.zeros_like(x)
  flat_x = x.reshape(-1)
  flat_g = grad.reshape(-1)
  for i in range(flat_x.size):
    orig = flat_x[i]
    flat_x[i] = orig + eps
    plus = fn(x)
    flat_x[i] = orig - eps
    minus = fn(x)
    flat_x[i] = orig
    flat_g[i] = (plus - minus) / (2 * eps)
  return grad


def sparse_and_dense_losses(use_resource, seed=3):
  """The same loss of a [5, 2] variable through a gather and a matmul.

  Rows 3 (twice) and 0 are gathered, so the sparse loss has an
  IndexedSlices gradient that touches two rows.

  Returns:
    (sparse_var, dense_var, sparse_loss, dense_loss, x0), both variables
    starting from the values x0.
  """
  rng = np.random.RandomState(seed)
  x0 = rng.randn(5, 2).astype(np.float32)
  weights = rng.randn(3, 2).astype(np.float32)
  indices = [3, 0, 3]
  sparse_var = tf.get_variable("sparse", initializer=x0,
                               use_resource=use_resource)
  dense_var = tf.get_variable("dense", initializer=x0,
                              use_resource=use_resource)
  one_hot = np.eye(5, dtype=np.float32)[indices]
  sparse_loss = tf.reduce_sum(tf.square(tf.gather(sparse_var, indices)) *
                              weights)
  dense_loss = tf.reduce_sum(tf.square(tf.matmul(one_hot, dense_var)) *
                             weights)
  return sparse_var, dense_var, sparse_loss, dense_loss, x0


def feed_values(problem, rng, scale=1.0):
  """Random float32 parameter values with the problem's shapes."""
  return [(scale * rng.randn(*shape)).astype(np.float32)
          for shape in problem.param_shapes]


class TestCase(tf.test.TestCase):
  """tf.test.TestCase with temporary folders that also work under pytest.

  `create_tempdir` reads absl's --test_tmpdir flag, which pytest never parses.
  """

  def make_tempdir(self):
    """Returns a new empty folder, removed when the test ends."""
    path = tempfile.mkdtemp(prefix="l2o-test-")
    self.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path
