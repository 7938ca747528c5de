"""Tests for problems/data_files.py: file formats, downloads, data folders.

Downloads are exercised with file:// URLs into temporary folders; nothing here
touches the network.
"""

import gzip
import hashlib
import os
import pathlib
import pickle
import shutil
import struct
import tarfile
import tempfile
from unittest import mock

import numpy as np

from tests import test_util

import tensorflow.compat.v1 as tf  # pylint: disable=wrong-import-order

from problems import data_files  # pylint: disable=g-import-not-at-top

_STEMS = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _sha256(data):
  return hashlib.sha256(data).hexdigest()


def _file_url(path):
  return pathlib.Path(path).as_uri()


def _read_bytes(path):
  with open(path, "rb") as f:
    return f.read()


def _write_bytes(path, data):
  with open(path, "wb") as f:
    f.write(data)


class IdxTest(test_util.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = self.make_tempdir()
    rng = np.random.RandomState(0)
    self.images = rng.randint(0, 256, size=(4, 5, 3)).astype(np.uint8)
    self.labels = rng.randint(0, 10, size=(6,)).astype(np.uint8)

  def test_images_round_trip_plain_and_gzipped(self):
    for name in ("images", "images.gz"):
      path = os.path.join(self.dir, name)
      data_files.write_idx(path, self.images)
      read = data_files.read_idx(path)
      self.assertEqual(read.dtype, np.uint8)
      self.assertEqual(read.shape, (4, 5, 3))
      self.assertAllEqual(read, self.images)

  def test_labels_round_trip_plain_and_gzipped(self):
    for name in ("labels", "labels.gz"):
      path = os.path.join(self.dir, name)
      data_files.write_idx(path, self.labels)
      read = data_files.read_idx(path)
      self.assertEqual(read.shape, (6,))
      self.assertAllEqual(read, self.labels)

  def test_written_files_follow_the_idx_layout(self):
    plain = os.path.join(self.dir, "images")
    gzipped = os.path.join(self.dir, "images.gz")
    labels = os.path.join(self.dir, "labels")
    data_files.write_idx(plain, self.images)
    data_files.write_idx(gzipped, self.images)
    data_files.write_idx(labels, self.labels)
    expected_images = (struct.pack(">IIII", 2051, 4, 5, 3) +
                       self.images.tobytes())
    self.assertEqual(_read_bytes(plain), expected_images)
    self.assertEqual(_read_bytes(gzipped)[:2], b"\x1f\x8b")
    with gzip.open(gzipped, "rb") as f:
      self.assertEqual(f.read(), expected_images)
    self.assertEqual(_read_bytes(labels),
                     struct.pack(">II", 2049, 6) + self.labels.tobytes())

  def test_reads_a_hand_written_label_file(self):
    path = os.path.join(self.dir, "hand")
    _write_bytes(path, struct.pack(">II", 2049, 3) + bytes([7, 0, 255]))
    self.assertAllEqual(data_files.read_idx(path), [7, 0, 255])

  def test_read_rejects_a_bad_magic_number(self):
    path = os.path.join(self.dir, "bad")
    _write_bytes(path, struct.pack(">II", 2050, 2) + b"\x01\x02")
    with self.assertRaisesRegex(ValueError, "magic"):
      data_files.read_idx(path)

  def test_read_rejects_truncated_pixel_data(self):
    path = os.path.join(self.dir, "images")
    data_files.write_idx(path, self.images)
    _write_bytes(path, _read_bytes(path)[:-1])
    with self.assertRaises(ValueError):
      data_files.read_idx(path)

  def test_read_rejects_trailing_bytes(self):
    path = os.path.join(self.dir, "labels")
    data_files.write_idx(path, self.labels)
    _write_bytes(path, _read_bytes(path) + b"\x00")
    with self.assertRaises(ValueError):
      data_files.read_idx(path)

  def test_read_rejects_a_file_shorter_than_the_header(self):
    path = os.path.join(self.dir, "short")
    _write_bytes(path, b"\x00\x00\x08")
    with self.assertRaises(ValueError):
      data_files.read_idx(path)

  def test_read_rejects_an_image_header_cut_before_rows_and_columns(self):
    path = os.path.join(self.dir, "images")
    data_files.write_idx(path, self.images)
    _write_bytes(path, _read_bytes(path)[:12])
    with self.assertRaises(ValueError):
      data_files.read_idx(path)

  def test_read_rejects_a_truncated_gzip_stream(self):
    path = os.path.join(self.dir, "images.gz")
    data_files.write_idx(path, self.images)
    _write_bytes(path, _read_bytes(path)[:-12])
    with self.assertRaises(ValueError):
      data_files.read_idx(path)

  def test_write_rejects_two_dimensional_arrays(self):
    path = os.path.join(self.dir, "flat")
    with self.assertRaises(ValueError):
      data_files.write_idx(path, np.zeros((4, 784), np.uint8))
    self.assertFalse(os.path.exists(path))


class CorruptFileTest(test_util.TestCase):
  """A data file that is there but broken: one line naming it, a remedy."""

  def setUp(self):
    super().setUp()
    self.dir = self.make_tempdir()
    self.images = np.random.RandomState(2).randint(
        0, 256, size=(20, 28, 28)).astype(np.uint8)
    self.path = os.path.join(self.dir, "t10k-images-idx3-ubyte.gz")
    data_files.write_idx(self.path, self.images)

  def _message(self, reader=data_files.read_idx):
    before = _read_bytes(self.path)
    with self.assertRaises(data_files.DataFileError) as caught:
      reader(self.path)
    message = str(caught.exception)
    self.assertNotIn("\n", message)
    self.assertTrue(message.startswith(self.path + ": "), message)
    self.assertIn("delete it to download it again", message)
    self.assertEqual(_read_bytes(self.path), before)
    return message

  def test_the_error_is_a_value_error(self):
    self.assertTrue(issubclass(data_files.DataFileError, ValueError))

  def test_a_truncated_gzip_file_is_not_a_complete_idx_file(self):
    data = _read_bytes(self.path)
    for length in (len(data) // 2, 12, 3):
      _write_bytes(self.path, data[:length])
      self.assertRegex(self._message(),
                       "not a complete gzip'd IDX image or label file "
                       r"\(corrupt gzip stream: ")

  def test_a_gzip_file_with_a_corrupt_body_is_rejected(self):
    data = bytearray(_read_bytes(self.path))
    data[len(data) // 2:len(data) // 2 + 64] = b"\xff" * 64
    _write_bytes(self.path, bytes(data))
    self.assertIn("corrupt gzip stream", self._message())

  def test_garbage_is_neither_gzip_nor_idx(self):
    _write_bytes(self.path, np.random.RandomState(3).bytes(5000))
    self.assertRegex(self._message(),
                     r"not a gzip'd IDX image or label file \(no gzip header "
                     r"\(1f 8b\), and read as a plain IDX file: magic number")

  def test_garbage_behind_a_gzip_header_is_rejected(self):
    _write_bytes(self.path, b"\x1f\x8b" + np.random.RandomState(4).bytes(500))
    self.assertIn("corrupt gzip stream", self._message())

  def test_a_complete_gzip_of_a_cut_idx_file_names_both_sizes(self):
    with gzip.open(self.path, "wb") as f:
      f.write(struct.pack(">IIII", 2051, 20, 28, 28) +
              self.images.tobytes()[:-100])
    self.assertIn("the header announces 15680 values of shape (20, 28, 28), "
                  "the file holds 15580", self._message())

  def test_a_gzip_of_something_else_names_the_magic_number(self):
    with gzip.open(self.path, "wb") as f:
      f.write(b"<html>not found</html>")
    self.assertRegex(self._message(), "magic number [0-9]+, neither 2051 "
                     r"\(images\) nor 2049 \(labels\)")

  def test_an_unreadable_path_is_a_data_file_error(self):
    os.remove(self.path)
    os.mkdir(self.path)
    with self.assertRaisesRegex(data_files.DataFileError,
                                "^%s: cannot read it" % self.path):
      data_files.read_idx(self.path)

  def test_a_truncated_or_garbage_cifar_batch_is_rejected(self):
    self.path = os.path.join(self.dir, "data_batch_1")
    data_files.write_cifar_batch(
        self.path, np.zeros((3, 3, 32, 32), np.uint8), [1, 2, 3])
    data = _read_bytes(self.path)
    _write_bytes(self.path, data[:len(data) // 2])
    self.assertIn("not a CIFAR-10 python batch",
                  self._message(data_files.read_cifar_batch))
    _write_bytes(self.path, b"garbage" * 100)
    self.assertIn("not a CIFAR-10 python batch",
                  self._message(data_files.read_cifar_batch))
    _write_bytes(self.path, pickle.dumps([1, 2, 3]))
    self.assertIn("(a pickled list)",
                  self._message(data_files.read_cifar_batch))


class CifarBatchTest(test_util.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = self.make_tempdir()
    rng = np.random.RandomState(1)
    self.images = rng.randint(0, 256, size=(5, 3, 32, 32)).astype(np.uint8)
    self.labels = rng.randint(0, 10, size=(5,))

  def test_batch_round_trips(self):
    path = os.path.join(self.dir, "data_batch_1")
    data_files.write_cifar_batch(path, self.images, self.labels)
    images, labels = data_files.read_cifar_batch(path)
    self.assertEqual(images.dtype, np.uint8)
    self.assertEqual(images.shape, (5, 3, 32, 32))
    self.assertAllEqual(images, self.images)
    self.assertEqual(labels.shape, (5,))
    self.assertAllEqual(labels, self.labels)

  def test_written_batch_has_the_canonical_keys_and_layout(self):
    path = os.path.join(self.dir, "test_batch")
    data_files.write_cifar_batch(path, self.images, self.labels)
    with open(path, "rb") as f:
      batch = pickle.load(f, encoding="bytes")
    self.assertEqual(batch[b"data"].shape, (5, 3072))
    # Rows are the red, green, then blue planes, each row-major.
    self.assertAllEqual(batch[b"data"][2, 1024:2048],
                        self.images[2, 1].reshape(-1))
    self.assertEqual(batch[b"labels"], [int(l) for l in self.labels])

  def test_batch_with_str_keys_also_reads(self):
    path = os.path.join(self.dir, "str_keys")
    with open(path, "wb") as f:
      pickle.dump({"data": self.images.reshape(5, -1),
                   "labels": list(self.labels), "filenames": ["a"] * 5}, f)
    images, labels = data_files.read_cifar_batch(path)
    self.assertAllEqual(images, self.images)
    self.assertAllEqual(labels, self.labels)

  def test_batch_with_fewer_labels_than_images_is_rejected(self):
    path = os.path.join(self.dir, "mismatch")
    data_files.write_cifar_batch(path, self.images, self.labels[:4])
    with self.assertRaises(ValueError):
      data_files.read_cifar_batch(path)


class DownloadTest(test_util.TestCase):

  def setUp(self):
    super().setUp()
    self.src_dir = self.make_tempdir()
    self.dest_root = self.make_tempdir()
    self.payload = b"some bytes to fetch\n" * 100
    self.src = os.path.join(self.src_dir, "file.bin")
    _write_bytes(self.src, self.payload)
    self.dest = os.path.join(self.dest_root, "new", "folder", "file.bin")

  def test_download_with_the_right_checksum_writes_the_file(self):
    data_files.download(_file_url(self.src), self.dest, _sha256(self.payload))
    self.assertEqual(_read_bytes(self.dest), self.payload)
    self.assertEqual(test_util.file_tree(self.dest_root),
                     ["new/", "new/folder/", "new/folder/file.bin"])

  def test_download_with_a_wrong_checksum_leaves_nothing_behind(self):
    with self.assertRaisesRegex(OSError, "checksum"):
      data_files.download(_file_url(self.src), self.dest, "0" * 64)
    self.assertEqual(test_util.file_tree(self.dest_root), [])

  def test_download_without_checksum_skips_the_check(self):
    data_files.download(_file_url(self.src), self.dest, None)
    self.assertEqual(_read_bytes(self.dest), self.payload)

  def test_download_of_a_missing_source_raises_os_error(self):
    missing = _file_url(os.path.join(self.src_dir, "absent.bin"))
    with self.assertRaises(OSError):
      data_files.download(missing, self.dest, None)
    self.assertEqual(test_util.file_tree(self.dest_root), [])

  def test_download_uses_and_cleans_a_scratch_folder(self):
    scratch = self.make_tempdir()
    with mock.patch.object(tempfile, "tempdir", scratch):
      data_files.download(_file_url(self.src), self.dest,
                          _sha256(self.payload))
      with self.assertRaises(OSError):
        data_files.download(_file_url(self.src), self.dest + "2", "0" * 64)
    self.assertEqual(test_util.file_tree(scratch), [])
    self.assertFalse(os.path.exists(self.dest + "2"))


class FindIdxFilesTest(test_util.TestCase):

  def setUp(self):
    super().setUp()
    self.mirror = self.make_tempdir()
    rng = np.random.RandomState(2)
    self.images = rng.randint(0, 256, size=(3, 28, 28)).astype(np.uint8)
    self.labels = rng.randint(0, 10, size=(3,)).astype(np.uint8)
    data_files.write_idx(os.path.join(self.mirror, _STEMS[0] + ".gz"),
                         self.images)
    data_files.write_idx(os.path.join(self.mirror, _STEMS[1] + ".gz"),
                         self.labels)
    self.checksums = {
        stem + ".gz": data_files.sha256_of(
            os.path.join(self.mirror, stem + ".gz")) for stem in _STEMS}
    self.base_url = _file_url(self.mirror) + "/"
    self.root = self.make_tempdir()

  def test_missing_files_are_downloaded_into_the_first_folder(self):
    first = os.path.join(self.root, "first")
    second = os.path.join(self.root, "second")
    paths = data_files.find_idx_files("Fake", _STEMS, [first, second],
                                      self.base_url, self.checksums, True)
    self.assertEqual(paths, [os.path.join(first, s + ".gz") for s in _STEMS])
    self.assertAllEqual(data_files.read_idx(paths[0]), self.images)
    self.assertAllEqual(data_files.read_idx(paths[1]), self.labels)
    self.assertEqual(test_util.file_tree(self.root),
                     ["first/"] + ["first/" + s + ".gz" for s in _STEMS])

  def test_only_the_missing_file_is_downloaded(self):
    folder = os.path.join(self.root, "mnist")
    os.makedirs(folder)
    local_labels = np.array([9, 9, 9, 9], np.uint8)
    data_files.write_idx(os.path.join(folder, _STEMS[1]), local_labels)
    paths = data_files.find_idx_files("Fake", _STEMS, [folder], self.base_url,
                                      self.checksums, True)
    self.assertEqual(paths, [os.path.join(folder, _STEMS[0] + ".gz"),
                             os.path.join(folder, _STEMS[1])])
    self.assertAllEqual(data_files.read_idx(paths[1]), local_labels)

  def test_existing_gz_files_are_used_without_downloading(self):
    folder = os.path.join(self.root, "mnist")
    os.makedirs(folder)
    for stem in _STEMS:
      data_files.write_idx(os.path.join(folder, stem + ".gz"),
                           np.zeros((1,), np.uint8))
      data_files.write_idx(os.path.join(folder, stem),
                           np.ones((2,), np.uint8))
    nowhere = _file_url(os.path.join(self.root, "no-mirror")) + "/"
    paths = data_files.find_idx_files("Fake", _STEMS, [folder], nowhere,
                                      self.checksums, True)
    self.assertEqual(paths, [os.path.join(folder, s + ".gz") for s in _STEMS])

  def test_later_folders_are_searched_before_downloading(self):
    first = os.path.join(self.root, "first")
    second = os.path.join(self.root, "second")
    os.makedirs(second)
    for stem in _STEMS:
      shutil.copyfile(os.path.join(self.mirror, stem + ".gz"),
                      os.path.join(second, stem + ".gz"))
    paths = data_files.find_idx_files("Fake", _STEMS, [first, second],
                                      "file:///no-such-mirror/", {}, True)
    self.assertEqual(paths, [os.path.join(second, s + ".gz") for s in _STEMS])
    self.assertFalse(os.path.exists(first))

  def test_checksum_mismatch_raises_data_not_found_and_writes_nothing(self):
    folder = os.path.join(self.root, "mnist")
    bad = dict(self.checksums)
    bad[_STEMS[0] + ".gz"] = "f" * 64
    with self.assertRaises(data_files.DataNotFoundError) as caught:
      data_files.find_idx_files("Fake", _STEMS, [folder], self.base_url, bad,
                                True)
    self.assertIn("checksum", str(caught.exception))
    self.assertEqual(test_util.file_tree(self.root), [])

  def test_disabled_downloads_raise_with_the_expected_layout(self):
    folder = os.path.join(self.root, "mnist")
    with self.assertRaises(data_files.DataNotFoundError) as caught:
      data_files.find_idx_files("Fake", _STEMS, [folder], self.base_url,
                                self.checksums, False)
    message = str(caught.exception)
    self.assertIn("Fake", message)
    self.assertIn(_STEMS[0] + "[.gz]", message)
    self.assertIn(folder, message)
    self.assertIn("<data_dir>/mnist/", message)
    self.assertIn(data_files.DATA_DIR_ENV, message)
    self.assertIsInstance(caught.exception, FileNotFoundError)
    self.assertEqual(test_util.file_tree(self.root), [])


class FindCifar10FolderTest(test_util.TestCase):

  def setUp(self):
    super().setUp()
    staging = self.make_tempdir()
    self.written = test_util.write_fake_cifar10(
        os.path.join(staging, data_files.CIFAR10_FOLDER), per_batch=2, seed=5)
    archive_dir = self.make_tempdir()
    self.archive = os.path.join(archive_dir, "cifar-10-python.tar.gz")
    with tarfile.open(self.archive, "w:gz") as tar:
      tar.add(os.path.join(staging, data_files.CIFAR10_FOLDER),
              arcname=data_files.CIFAR10_FOLDER)
    self.data_dir = self.make_tempdir()
    for name, value in [("CIFAR10_URL", _file_url(self.archive)),
                        ("CIFAR10_SHA256", data_files.sha256_of(self.archive))]:
      patcher = mock.patch.object(data_files, name, value)
      patcher.start()
      self.addCleanup(patcher.stop)

  def _batch_names(self):
    return data_files.CIFAR10_TRAIN_BATCHES + (data_files.CIFAR10_TEST_BATCH,)

  def test_download_unpacks_the_batches_into_the_data_dir(self):
    folder = data_files.find_cifar10_folder(self.data_dir, True)
    self.assertEqual(folder,
                     os.path.join(self.data_dir, data_files.CIFAR10_FOLDER))
    self.assertEqual(
        test_util.file_tree(self.data_dir),
        sorted([data_files.CIFAR10_FOLDER + "/"] +
               [data_files.CIFAR10_FOLDER + "/" + n
                for n in self._batch_names()]))
    for name in self._batch_names():
      images, labels = data_files.read_cifar_batch(os.path.join(folder, name))
      self.assertAllEqual(images, self.written[name][0])
      self.assertAllEqual(labels, self.written[name][1])

  def test_download_keeps_a_batch_that_is_already_present(self):
    folder = os.path.join(self.data_dir, data_files.CIFAR10_FOLDER)
    os.makedirs(folder)
    mine = os.path.join(folder, "data_batch_3")
    own_images = np.full((1, 3, 32, 32), 7, np.uint8)
    data_files.write_cifar_batch(mine, own_images, [4])
    own_bytes = _read_bytes(mine)
    self.assertEqual(data_files.find_cifar10_folder(self.data_dir, True),
                     folder)
    self.assertEqual(_read_bytes(mine), own_bytes)
    images, _ = data_files.read_cifar_batch(
        os.path.join(folder, "data_batch_2"))
    self.assertAllEqual(images, self.written["data_batch_2"][0])
    self.assertLen(os.listdir(folder), 6)

  def test_complete_folder_is_used_without_downloading(self):
    test_util.write_fake_cifar10(
        os.path.join(self.data_dir, data_files.CIFAR10_FOLDER), per_batch=1,
        seed=9)
    before = test_util.file_tree(self.data_dir)
    with mock.patch.object(data_files, "CIFAR10_URL",
                           _file_url(self.archive + ".absent")):
      folder = data_files.find_cifar10_folder(self.data_dir, True)
    self.assertEqual(folder,
                     os.path.join(self.data_dir, data_files.CIFAR10_FOLDER))
    self.assertEqual(test_util.file_tree(self.data_dir), before)

  def test_archive_with_a_wrong_checksum_is_rejected(self):
    with mock.patch.object(data_files, "CIFAR10_SHA256", "0" * 64):
      with self.assertRaises(data_files.DataNotFoundError) as caught:
        data_files.find_cifar10_folder(self.data_dir, True)
    self.assertIn("checksum", str(caught.exception))
    self.assertEqual(test_util.file_tree(self.data_dir), [])

  def test_archive_without_the_batches_folder_leaves_nothing_behind(self):
    staging = self.make_tempdir()
    os.makedirs(os.path.join(staging, "something-else"))
    wrong = os.path.join(self.make_tempdir(), "wrong.tar.gz")
    with tarfile.open(wrong, "w:gz") as tar:
      tar.add(os.path.join(staging, "something-else"),
              arcname="something-else")
    with mock.patch.object(data_files, "CIFAR10_URL", _file_url(wrong)), \
        mock.patch.object(data_files, "CIFAR10_SHA256", None):
      with self.assertRaises(data_files.DataNotFoundError):
        data_files.find_cifar10_folder(self.data_dir, True)
    self.assertEqual(test_util.file_tree(self.data_dir), [])

  def test_disabled_downloads_name_every_missing_batch(self):
    with self.assertRaises(data_files.DataNotFoundError) as caught:
      data_files.find_cifar10_folder(self.data_dir, False)
    message = str(caught.exception)
    for name in self._batch_names():
      self.assertIn(name, message)
    self.assertIn(data_files.DATA_DIR_ENV, message)
    self.assertEqual(test_util.file_tree(self.data_dir), [])


class DataDirTest(test_util.TestCase):

  def test_argument_beats_environment_beats_default(self):
    with mock.patch.dict(os.environ, {data_files.DATA_DIR_ENV: "/from/env",
                                      "XDG_CACHE_HOME": "/xdg"}):
      self.assertEqual(data_files.resolve_data_dir("/from/arg"), "/from/arg")
      self.assertEqual(data_files.resolve_data_dir(), "/from/env")
      self.assertEqual(data_files.resolve_data_dir(None), "/from/env")
      del os.environ[data_files.DATA_DIR_ENV]
      self.assertEqual(data_files.resolve_data_dir(),
                       os.path.join("/xdg", "l2o-scale", "data"))

  def test_default_data_dir_honours_xdg_cache_home(self):
    with mock.patch.dict(os.environ, {"XDG_CACHE_HOME": "/somewhere/cache"}):
      self.assertEqual(data_files.default_data_dir(),
                       "/somewhere/cache/l2o-scale/data")

  def test_default_data_dir_falls_back_to_the_home_cache(self):
    with mock.patch.dict(os.environ, {"HOME": "/home/someone"}):
      os.environ.pop("XDG_CACHE_HOME", None)
      self.assertEqual(data_files.default_data_dir(),
                       "/home/someone/.cache/l2o-scale/data")
      os.environ["XDG_CACHE_HOME"] = ""
      self.assertEqual(data_files.default_data_dir(),
                       "/home/someone/.cache/l2o-scale/data")


if __name__ == "__main__":
  tf.test.main()
