"""Data sets for the optimizees: real image data and synthetic generators.

Every function returns a `Dataset(data, labels)` with float32 data (first axis
= samples) and int32 labels, except `mnist_splits` and `fashion_mnist_splits`,
which return `Splits(train, validation, test)` of three such data sets for
held-out evaluation (only `train` is ever trained on). Labels are integer
class ids throughout; the original training code one-hot encoded them before
feeding, which broke every 2-class problem (see docs/fidelity.md).

Randomness: the original reseeded NumPy's process-global generator inside
every generator. Here each generator draws from its own
`np.random.RandomState(seed)`, which yields the same numbers for the same seed
without disturbing anyone else's random stream. A `None` seed is drawn from
the global generator, as the original did.
"""

import collections
import os

import numpy as np

from problems import data_files

MAX_SEED = 4294967295
MNIST_VALIDATION_SIZE = 5000


class Dataset(collections.namedtuple("Dataset", "data labels")):
  """A data set: `data` float32 `(N, ...)` and `labels` int32 `(N,)`/`(N, 1)`."""

  __slots__ = ()

  @property
  def size(self):
    """Number of samples."""
    return len(self.data)

  def batch_indices(self, num_batches, batch_size, rng=None):
    """Mini-batch indices into this data set; see `batch_indices`.

    Raises:
      ValueError: data and labels have different lengths.
    """
    if len(self.data) != len(self.labels):
      raise ValueError("data has %d samples but labels has %d" %
                       (len(self.data), len(self.labels)))
    return batch_indices(self.size, num_batches, batch_size, rng=rng)


EMPTY_DATASET = Dataset(np.array([], dtype="float32"),
                        np.array([], dtype="int32"))


class Splits(collections.namedtuple("Splits", "train validation test")):
  """A data set cut into three disjoint parts, each a `Dataset`.

  Attributes:
    train: what the optimizee trains on (its minibatches come from here).
    validation: held out, never trained on; for choosing settings (learning
      rates, checkpoints, early stopping) without touching `test`.
    test: held out, never trained on; for the reported generalisation
      numbers (loss and accuracy of the trained optimizee).
  """

  __slots__ = ()


def batch_indices(data_size, num_batches, batch_size, rng=None):
  """Indices of `num_batches` mini-batches drawn without replacement per epoch.

  A random permutation of range(data_size) is consumed `batch_size` entries at
  a time; when fewer than `batch_size` remain, the leftovers are skipped, the
  permutation is reshuffled and consumption starts over. If `batch_size`
  exceeds `data_size`, every batch is a whole, freshly shuffled permutation.

  Args:
    data_size: number of samples.
    num_batches: number of batches to return.
    batch_size: samples per batch.
    rng: `np.random.RandomState`; defaults to NumPy's global generator, as in
      the original.

  Returns:
    A list of `num_batches` lists of Python ints.
  """
  rng = np.random if rng is None else rng
  perm = rng.permutation(data_size)
  batches = []
  end = 0
  for _ in range(num_batches):
    start, end = end, end + batch_size
    if end > data_size:
      rng.shuffle(perm)
      start, end = 0, batch_size
    batches.append(perm[start:end].tolist())
  return batches


def draw_seed(rng=None):
  """A seed in [0, MAX_SEED) from `rng` (default: NumPy's global generator)."""
  rng = np.random if rng is None else rng
  return int(rng.randint(MAX_SEED, dtype=np.int64))


def _as_dataset(data, labels):
  return Dataset(np.asarray(data).astype("float32"),
                 np.asarray(labels).astype("int32"))


def noisy_parity_class(n_samples, n_classes=2, n_context_ids=5,
                       noise_prob=0.25, random_seed=None):
  """Class = (sum of the context ids + Bernoulli noise) mod n_classes.

  Args:
    n_samples: number of samples.
    n_classes: ids and labels lie in [0, n_classes).
    n_context_ids: ids per sample.
    noise_prob: probability of adding 1 before the modulo.
    random_seed: int seed; None uses fresh OS entropy (as the original).

  Returns:
    Dataset with data `(n_samples, n_context_ids)` (ids as float32) and labels
    `(n_samples,)`.
  """
  rng = np.random.RandomState(random_seed)
  x = rng.randint(0, n_classes, [n_samples, n_context_ids])
  noise = rng.binomial(1, noise_prob, [n_samples])
  y = (np.sum(x, 1) + noise) % n_classes
  return _as_dataset(x, y)


def random(n_features, n_samples, n_classes=2, sep=1.0, random_seed=None):
  """A random classification task from `sklearn.datasets.make_classification`.

  All features informative, no redundant ones, other arguments at scikit-learn's
  defaults, as the original.

  Returns:
    Dataset with data `(n_samples, n_features)` and labels `(n_samples,)`.
  """
  from sklearn import datasets as sk_datasets  # pylint: disable=g-import-not-at-top
  x, y = sk_datasets.make_classification(
      n_samples=n_samples, n_features=n_features, n_informative=n_features,
      n_redundant=0, n_classes=n_classes, class_sep=sep,
      random_state=random_seed)
  return _as_dataset(x, y)


def random_binary(n_features, n_samples, random_seed=None):
  """Uniform {0, 1} features with all-zero `(n_samples, 1)` labels."""
  seed = draw_seed() if random_seed is None else random_seed
  rng = np.random.RandomState(seed)
  x = rng.randint(2, size=(n_samples, n_features))
  return _as_dataset(x, np.zeros((n_samples, 1)))


def random_symmetric(n_features, n_samples, random_seed=None):
  """Gaussian samples followed by their negatives (the data has mean zero).

  Args:
    n_features: features per sample.
    n_samples: an even number of samples.
    random_seed: int seed, or None to draw one.

  Returns:
    Dataset: rows [x; -x] with x `(n_samples/2, n_features)`, zero labels
    `(n_samples, 1)`.

  Raises:
    ValueError: `n_samples` is odd (the original returned one data row fewer
      than labels).
  """
  if n_samples % 2:
    raise ValueError("random_symmetric needs an even n_samples, got %d" %
                     n_samples)
  seed = draw_seed() if random_seed is None else random_seed
  rng = np.random.RandomState(seed)
  x = rng.randn(n_samples // 2, n_features)
  return _as_dataset(np.concatenate([x, -x], 0), np.zeros((n_samples, 1)))


def random_mlp(n_features, n_samples, random_seed=None, n_layers=6, width=20):
  """Labels from the sign of the first output of a random deep ReLU network.

  Every layer's weights are N(0, 1) scaled by sqrt(2 / n_features) (the
  original computes the scale once, from the input width).

  Returns:
    Dataset with Gaussian data `(n_samples, n_features)` and 0/1 labels
    `(n_samples,)`.
  """
  seed = draw_seed() if random_seed is None else random_seed
  rng = np.random.RandomState(seed)
  x = rng.standard_normal((n_samples, n_features))
  scale = np.sqrt(2.0) / np.sqrt(n_features)
  h = x
  n_in = n_features
  for _ in range(n_layers):
    w = rng.standard_normal((n_in, width)) * scale
    h = np.maximum(np.dot(h, w), 0)
    n_in = width
  return _as_dataset(x, h[:, 0] > 0)


class _IdxSource(collections.namedtuple(
    "_IdxSource", "name folders base_url checksums")):
  """Where an MNIST-format data set's IDX files are looked for and fetched.

  Attributes:
    name: data set name for messages ("MNIST").
    folders: folders searched in order; downloads go to the first.
    base_url: the canonical source folder.
    checksums: dict gz file name -> SHA-256.
  """

  __slots__ = ()

  def find(self, stems, download_ok):
    """Paths of the IDX files `stems`; see `data_files.find_idx_files`."""
    return data_files.find_idx_files(self.name, stems, self.folders,
                                     self.base_url, self.checksums,
                                     download_ok)


def _mnist_source(data_dir):
  folder = os.path.join(data_files.resolve_data_dir(data_dir), "mnist")
  return _IdxSource("MNIST", [folder], data_files.MNIST_URL,
                    data_files.MNIST_SHA256)


def _fashion_mnist_source(data_dir):
  folder = os.path.join(data_files.resolve_data_dir(data_dir), "fashion-mnist")
  return _IdxSource("Fashion-MNIST",
                    [folder, data_files.FASHION_MNIST_SYSTEM_DIR],
                    data_files.FASHION_MNIST_URL,
                    data_files.FASHION_MNIST_SHA256)


def _idx_stems(prefix):
  """The image and label file names of split "train" or "t10k"."""
  return [prefix + "-images-idx3-ubyte", prefix + "-labels-idx1-ubyte"]


def _read_idx_pair(name, images_path, labels_path):
  """Reads an image and a label file once each; checks their lengths.

  Returns:
    (images uint8 `(N, 28, 28)`, labels uint8 `(N,)`).

  Raises:
    data_files.DataFileError: a file is not a complete IDX file, or the two
      hold different numbers of samples.
  """
  images = data_files.read_idx(images_path)
  labels = data_files.read_idx(labels_path)
  if len(images) != len(labels):
    raise data_files.DataFileError("%s: %d images but %d labels in %s" %
                                   (name, len(images), len(labels),
                                    labels_path))
  return images, labels


def _image_dataset(images, labels):
  """The original's preprocessing: uint8 pixels /255 as `(N, 28, 28, 1)`."""
  images = images.astype(np.float32) * (1.0 / 255.0)
  return _as_dataset(images.reshape(images.shape + (1,)), labels)


def _idx_image_dataset(source, train, download_ok):
  """Loads one MNIST-format split: images /255 as (N, 28, 28, 1), labels (N,).

  Only the requested split's two files are located and read. The training
  split drops its first MNIST_VALIDATION_SIZE samples, which the original's
  loader held out for validation.
  """
  paths = source.find(_idx_stems("train" if train else "t10k"), download_ok)
  images, labels = _read_idx_pair(source.name, *paths)
  if train:
    images = images[MNIST_VALIDATION_SIZE:]
    labels = labels[MNIST_VALIDATION_SIZE:]
  return _image_dataset(images, labels)


def _idx_image_splits(source, download_ok):
  """All three splits of an MNIST-format data set, each file read once.

  Raises:
    data_files.DataFileError: a file is unreadable, the training file has no
      more than MNIST_VALIDATION_SIZE images (which would leave nothing to
      train on), or it holds the test images.
  """
  paths = source.find(_idx_stems("train") + _idx_stems("t10k"), download_ok)
  images, labels = _read_idx_pair(source.name, *paths[:2])
  if len(images) <= MNIST_VALIDATION_SIZE:
    raise data_files.DataFileError(
        "%s: the training file %s has %d images; the splits need more than "
        "the %d held out for validation" %
        (source.name, paths[0], len(images), MNIST_VALIDATION_SIZE))
  test_images, test_labels = _read_idx_pair(source.name, *paths[2:])
  if np.array_equal(images, test_images):
    # E.g. train-* files linked to the t10k-* ones as a stand-in: the
    # "held-out" test split would be the training data.
    raise data_files.DataFileError(
        "%s: the training images %s are the test images %s; held-out "
        "evaluation needs the real training files" %
        (source.name, paths[0], paths[2]))
  held = MNIST_VALIDATION_SIZE
  return Splits(train=_image_dataset(images[held:], labels[held:]),
                validation=_image_dataset(images[:held], labels[:held]),
                test=_image_dataset(test_images, test_labels))


def mnist(train=True, data_dir=None, download=True):
  """MNIST as the original used it.

  Args:
    train: the training split (55,000 images: the 60,000 minus the first
      5,000, held out for validation) if True, else the 10,000 test images.
    data_dir: folder holding `mnist/`; see `data_files.resolve_data_dir`.
    download: whether to fetch missing files from the canonical source.

  Returns:
    Dataset: float32 images in [0, 1], `(N, 28, 28, 1)`; int32 labels `(N,)`.
  """
  return _idx_image_dataset(_mnist_source(data_dir), train, download)


def mnist_validation(data_dir=None, download=True):
  """MNIST's validation hold-out: the first MNIST_VALIDATION_SIZE (5,000)
  images of the training file, which `mnist(train=True)` leaves out;
  preprocessed as `mnist`. Only the two training files are read."""
  source = _mnist_source(data_dir)
  paths = source.find(_idx_stems("train"), download)
  images, labels = _read_idx_pair(source.name, *paths)
  if len(images) <= MNIST_VALIDATION_SIZE:
    raise data_files.DataFileError(
        "%s: the training file %s has %d images; the validation hold-out "
        "needs more than %d" % (source.name, paths[0], len(images),
                                MNIST_VALIDATION_SIZE))
  held = MNIST_VALIDATION_SIZE
  return _image_dataset(images[:held], labels[:held])


def mnist_splits(data_dir=None, download=True):
  """MNIST's training, validation and test splits, preprocessed as `mnist`.

  `train` is exactly `mnist(train=True)`: the 60,000 training images less
  the first MNIST_VALIDATION_SIZE (5,000), i.e. 55,000; `validation` is
  those first 5,000 (the hold-out the original's loader made); `test` is the
  10,000 test images, exactly `mnist(train=False)`. Each of the four IDX
  files is read once.

  Args:
    data_dir: folder holding `mnist/`; see `data_files.resolve_data_dir`.
    download: whether to fetch missing files from the canonical source.

  Returns:
    Splits of Datasets: float32 images in [0, 1], `(N, 28, 28, 1)`; int32
    labels `(N,)`.

  Raises:
    data_files.DataNotFoundError: any of the four files is missing (the
      message names all missing ones).
    data_files.DataFileError: a file is not a complete IDX file, the
      training file has no more than 5,000 images, or it holds the test
      images.
  """
  return _idx_image_splits(_mnist_source(data_dir), download)


def fashion_mnist(train=True, data_dir=None, download=True):
  """Fashion-MNIST, with exactly the preprocessing of `mnist`.

  Looks in `<data_dir>/fashion-mnist/`, then in Debian's
  /usr/share/datasets/fashion-mnist/ (package dataset-fashion-mnist), and
  downloads into the former when both lack the files.
  """
  return _idx_image_dataset(_fashion_mnist_source(data_dir), train, download)


def fashion_mnist_splits(data_dir=None, download=True):
  """Fashion-MNIST's training, validation and test splits; see `mnist_splits`.

  Sizes 55,000 / 5,000 / 10,000; the files are looked for as by
  `fashion_mnist`.
  """
  return _idx_image_splits(_fashion_mnist_source(data_dir), download)


def cifar10(train=True, data_dir=None, download=True):
  """CIFAR-10 from the python-pickle batches.

  Args:
    train: the 50,000 training images (no validation hold-out) if True, else
      the 10,000 test images.
    data_dir: folder holding `cifar-10-batches-py/`.
    download: whether to fetch the archive when batches are missing.

  Returns:
    Dataset: float32 images in [0, 1], NHWC `(N, 32, 32, 3)`; int32 labels
    `(N, 1)` (the original's shape, unlike MNIST's).
  """
  folder = data_files.find_cifar10_folder(
      data_files.resolve_data_dir(data_dir), download)
  names = (data_files.CIFAR10_TRAIN_BATCHES if train
           else (data_files.CIFAR10_TEST_BATCH,))
  batches = [data_files.read_cifar_batch(os.path.join(folder, n))
             for n in names]
  images = np.concatenate([b[0] for b in batches], 0)
  labels = np.concatenate([b[1] for b in batches], 0)
  images = images.transpose(0, 2, 3, 1).astype(np.float32) / 255.0
  return _as_dataset(images, labels.reshape(-1, 1))
