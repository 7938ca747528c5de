"""Finding, downloading and decoding the raw files of the real data sets.

Layout under the data directory (see `resolve_data_dir`):

  <data_dir>/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
  <data_dir>/fashion-mnist/  (same four IDX names; falls back to Debian's
                              /usr/share/datasets/fashion-mnist/)
  <data_dir>/cifar-10-batches-py/{data_batch_1..5,test_batch}

Files that are missing are downloaded from the canonical sources and checked
against their published SHA-256 sums. A download goes to a temporary folder
first and is moved into place only when complete and verified, so a failed or
interrupted download never leaves a partial file behind. When a download is
impossible (no network), `DataNotFoundError` names what is missing, where it
was looked for and how to point the code elsewhere. A file that is there but
unreadable (truncated, corrupt, of another format) raises `DataFileError`,
whose one-line message names the file, what was expected of it and what to
do.
"""

import gzip
import hashlib
import os
import pickle
import shutil
import struct
import tarfile
import tempfile
import urllib.request
import zlib

import numpy as np

DATA_DIR_ENV = "L2O_DATA_DIR"

MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"

# Published SHA-256 sums of the gzipped files as the canonical sources serve
# them. Local copies are not checked: distributions recompress them.
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz":
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz":
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz":
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz":
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz":
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz":
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz":
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz":
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
CIFAR10_SHA256 = (
    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce")
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_BATCHES = tuple("data_batch_%d" % i for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"

_IDX_IMAGES_MAGIC = 2051
_IDX_LABELS_MAGIC = 2049
_DOWNLOAD_TIMEOUT_S = 60


class DataNotFoundError(FileNotFoundError):
  """A data set's files are neither on disk nor downloadable."""


class DataFileError(ValueError):
  """A data file exists but is not a complete file of its format.

  The message is one line: the file, what it should have been, what was
  found, and the remedy (delete it so that it is downloaded again, or
  replace it).
  """


_REMEDY = "delete it to download it again (or replace it with a good copy)"


def _bad_file(path, expected, found):
  return DataFileError("%s: not %s (%s); %s" % (path, expected, found,
                                                 _REMEDY))


def default_data_dir():
  """The cache folder used when neither an argument nor L2O_DATA_DIR is set.

  Returns:
    `$XDG_CACHE_HOME/l2o-scale/data`, or `~/.cache/l2o-scale/data`.
  """
  cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(
      os.path.expanduser("~"), ".cache")
  return os.path.join(cache, "l2o-scale", "data")


def resolve_data_dir(data_dir=None):
  """Returns `data_dir`, else $L2O_DATA_DIR, else `default_data_dir()`."""
  return data_dir or os.environ.get(DATA_DIR_ENV) or default_data_dir()


def sha256_of(path):
  """Returns the hex SHA-256 digest of the file at `path`."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()


def download(url, dest_path, sha256):
  """Downloads `url` to `dest_path` atomically, verifying its SHA-256.

  Nothing is created at or beside `dest_path` unless the download completed
  and matched the checksum.

  Args:
    url: source address (any scheme urllib understands, file:// included).
    dest_path: final file path; its folder is created on success.
    sha256: expected hex digest, or None to skip the check.

  Raises:
    OSError: the download failed or its checksum did not match.
  """
  with tempfile.TemporaryDirectory(prefix="l2o-download-") as tmp_dir:
    tmp_path = os.path.join(tmp_dir, os.path.basename(dest_path))
    with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
      with open(tmp_path, "wb") as out:
        shutil.copyfileobj(response, out)
    if sha256 is not None:
      got = sha256_of(tmp_path)
      if got != sha256:
        raise OSError("checksum mismatch for %s: expected sha256 %s, got %s" %
                      (url, sha256, got))
    os.makedirs(os.path.dirname(os.path.abspath(dest_path)), exist_ok=True)
    # Copy next to the destination, then rename: the rename is atomic, the
    # copy across file systems is not.
    partial = dest_path + ".part"
    shutil.copyfile(tmp_path, partial)
    os.replace(partial, dest_path)


def _missing_error(name, missing, searched, layout, cause=None):
  message = (
      "%s data set not found: missing %s (looked in %s; expected layout %s). "
      "Download failed%s. Put the files there, or set %s or pass data_dir "
      "to point at a folder with that layout." %
      (name, ", ".join(missing), ", ".join(searched), layout,
       " (%s)" % cause if cause else "", DATA_DIR_ENV))
  return DataNotFoundError(message)


def _find_idx_file(folders, stem):
  """Returns the first `<folder>/<stem>` or `<folder>/<stem>.gz` that exists."""
  for folder in folders:
    for name in (stem + ".gz", stem):
      path = os.path.join(folder, name)
      if os.path.isfile(path):
        return path
  return None


def find_idx_files(name, stems, folders, base_url, checksums, download_ok):
  """Locates IDX files, downloading the missing ones into `folders[0]`.

  Args:
    name: data set name for messages ("MNIST").
    stems: file names without ".gz", e.g. "t10k-images-idx3-ubyte".
    folders: folders to search in order; downloads go to the first.
    base_url: source folder URL; the file URL is base_url + stem + ".gz".
    checksums: dict gz file name -> SHA-256.
    download_ok: whether to try downloading missing files.

  Returns:
    A list of paths, one per stem.

  Raises:
    DataNotFoundError: a file is missing and could not be downloaded.
  """
  paths = [_find_idx_file(folders, stem) for stem in stems]
  missing = [stem for stem, path in zip(stems, paths) if path is None]
  if not missing:
    return paths
  cause = "downloads disabled"
  if download_ok:
    try:
      for stem in missing:
        gz_name = stem + ".gz"
        download(base_url + gz_name, os.path.join(folders[0], gz_name),
                 checksums.get(gz_name))
      return [_find_idx_file(folders, stem) for stem in stems]
    except OSError as e:
      cause = str(e)
  raise _missing_error(name, [m + "[.gz]" for m in missing], folders,
                       "<data_dir>/%s/<name>[.gz]" %
                       os.path.basename(folders[0]), cause)


_GZIP_MAGIC = b"\x1f\x8b"


def _is_gzipped(path):
  with open(path, "rb") as f:
    return f.read(2) == _GZIP_MAGIC


def _idx_shape(f):
  """Reads an IDX header from `f`; returns the array shape it announces.

  Raises:
    ValueError: the header is short or its magic number is not an IDX
      image or label file's (the message says what was found).
  """
  header = f.read(8)
  if len(header) < 8:
    raise ValueError("%d bytes, shorter than the 8-byte header" % len(header))
  magic, count = struct.unpack(">II", header)
  if magic == _IDX_IMAGES_MAGIC:
    dims = f.read(8)
    if len(dims) < 8:
      raise ValueError("the image header ends after %d of its 16 bytes" %
                       (8 + len(dims)))
    return (count,) + struct.unpack(">II", dims)
  if magic == _IDX_LABELS_MAGIC:
    return (count,)
  raise ValueError("magic number %d, neither %d (images) nor %d (labels)" %
                   (magic, _IDX_IMAGES_MAGIC, _IDX_LABELS_MAGIC))


def read_idx(path):
  """Reads an IDX image (magic 2051) or label (magic 2049) file, gzipped or not.

  Args:
    path: file path.

  Returns:
    uint8 array: `(count, rows, cols)` for images, `(count,)` for labels.

  Raises:
    DataFileError: the file cannot be read or is not a complete IDX image or
      label file (a truncated or corrupt gzip stream, garbage, a wrong magic
      number, or a size that does not match the header).
  """
  try:
    gzipped = _is_gzipped(path)
  except OSError as e:
    raise DataFileError("%s: cannot read it (%s)" %
                        (path, e.strerror or e)) from None
  named_gz = path.endswith(".gz")
  if gzipped:
    expected = "a complete gzip'd IDX image or label file"
  elif named_gz:
    expected = "a gzip'd IDX image or label file"
  else:
    expected = "an IDX image or label file"
  try:
    with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as f:
      shape = _idx_shape(f)
      data = np.frombuffer(f.read(), dtype=np.uint8)
  except (EOFError, zlib.error, gzip.BadGzipFile) as e:
    raise _bad_file(path, expected, "corrupt gzip stream: %s" % e) from None
  except OSError as e:
    raise DataFileError("%s: cannot read it (%s)" %
                        (path, e.strerror or e)) from None
  except ValueError as e:
    if named_gz and not gzipped:
      # Plain IDX files named .gz are read too (some copies are); this one
      # is neither.
      e = "no gzip header (1f 8b), and read as a plain IDX file: %s" % e
    raise _bad_file(path, expected, e) from None
  if data.size != int(np.prod(shape)):
    raise _bad_file(path, expected, "the header announces %d values of shape "
                    "%s, the file holds %d" % (int(np.prod(shape)), shape,
                                               data.size))
  return data.reshape(shape)


def write_idx(path, array):
  """Writes a uint8 array as an IDX file (gzipped when `path` ends in .gz).

  Args:
    path: output path.
    array: uint8 array, `(count, rows, cols)` images or `(count,)` labels.
  """
  array = np.asarray(array, dtype=np.uint8)
  if array.ndim == 3:
    header = struct.pack(">IIII", _IDX_IMAGES_MAGIC, *array.shape)
  elif array.ndim == 1:
    header = struct.pack(">II", _IDX_LABELS_MAGIC, array.shape[0])
  else:
    raise ValueError("IDX arrays are (count, rows, cols) or (count,), got %s" %
                     (array.shape,))
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "wb") as f:
    f.write(header + array.tobytes())


def read_cifar_batch(path):
  """Reads one CIFAR-10 python-pickle batch.

  Args:
    path: a `data_batch_k` or `test_batch` file.

  Returns:
    (images, labels): uint8 `(N, 3, 32, 32)` and int64 `(N,)`.

  Raises:
    DataFileError: the file cannot be read or is not such a batch (a
      truncated or corrupt pickle, missing keys, wrong sizes).
  """
  expected = "a CIFAR-10 python batch (a pickled dict with data and labels)"
  try:
    with open(path, "rb") as f:
      batch = pickle.load(f, encoding="bytes")
  except OSError as e:
    raise DataFileError("%s: cannot read it (%s)" %
                        (path, e.strerror or e)) from None
  except Exception as e:  # pylint: disable=broad-except
    # Unpickling garbage raises almost anything (UnpicklingError, EOFError,
    # ValueError, KeyError, ...).
    raise _bad_file(path, expected, "%s: %s" % (type(e).__name__, e)) from None
  if not isinstance(batch, dict):
    raise _bad_file(path, expected, "a pickled %s" % type(batch).__name__)
  batch = {(k.decode("utf8") if isinstance(k, bytes) else k): v
           for k, v in batch.items()}
  missing = [k for k in ("data", "labels") if k not in batch]
  if missing:
    raise _bad_file(path, expected, "no %s entry" % " or ".join(missing))
  try:
    images = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(batch["labels"], dtype=np.int64)
  except (TypeError, ValueError, OverflowError) as e:
    raise _bad_file(path, expected, e) from None
  if len(images) != len(labels):
    raise _bad_file(path, expected, "%d images but %d labels" %
                    (len(images), len(labels)))
  return images, labels


def write_cifar_batch(path, images, labels):
  """Writes a CIFAR-10 python-pickle batch (the inverse of read_cifar_batch)."""
  images = np.asarray(images, dtype=np.uint8)
  batch = {b"data": images.reshape(len(images), -1),
           b"labels": [int(label) for label in labels]}
  with open(path, "wb") as f:
    pickle.dump(batch, f)


def find_cifar10_folder(data_dir, download_ok):
  """Returns `<data_dir>/cifar-10-batches-py`, downloading it if needed.

  Raises:
    DataNotFoundError: batches are missing and could not be downloaded.
  """
  folder = os.path.join(data_dir, CIFAR10_FOLDER)
  names = CIFAR10_TRAIN_BATCHES + (CIFAR10_TEST_BATCH,)

  def missing():
    return [n for n in names if not os.path.isfile(os.path.join(folder, n))]

  if not missing():
    return folder
  cause = "downloads disabled"
  if download_ok:
    try:
      _download_cifar10(data_dir)
      if not missing():
        return folder
      cause = "the archive lacked some batches"
    except (OSError, tarfile.TarError) as e:
      cause = str(e)
  raise _missing_error("CIFAR-10", missing(), [folder],
                       "<data_dir>/%s/{%s}" % (CIFAR10_FOLDER, ",".join(names)),
                       cause)


def _download_cifar10(data_dir):
  """Downloads the CIFAR-10 archive and adds the batches that are missing."""
  with tempfile.TemporaryDirectory(prefix="l2o-cifar10-") as tmp_dir:
    archive = os.path.join(tmp_dir, "cifar-10-python.tar.gz")
    download(CIFAR10_URL, archive, CIFAR10_SHA256)
    with tarfile.open(archive, "r:gz") as tar:
      tar.extractall(tmp_dir, filter="data")
    source = os.path.join(tmp_dir, CIFAR10_FOLDER)
    if not os.path.isdir(source):
      raise OSError("the CIFAR-10 archive has no %s/ folder" % CIFAR10_FOLDER)
    target = os.path.join(data_dir, CIFAR10_FOLDER)
    os.makedirs(target, exist_ok=True)
    for name in os.listdir(source):
      dest = os.path.join(target, name)
      if not os.path.exists(dest):
        shutil.copyfile(os.path.join(source, name), dest + ".part")
        os.replace(dest + ".part", dest)
