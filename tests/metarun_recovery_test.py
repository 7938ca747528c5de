"""metarun.py after moves, kills, concurrent starts and damaged files.

Each test runs the program as a user would (a subprocess) on the fast
GlobalLearningRate configuration, and checks what it says, its exit status
and that files it must not touch are byte-identical.
"""

from tests import test_util

import hashlib
import os
import shutil
import signal
import subprocess
import sys

import tensorflow.compat.v1 as tf

from optimizer import checkpoint_files
from optimizer import settings
from run_control import lock

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LOG = "GlobalLearningRate_GRUCell_20_2"
_FAST = ["--optimizer=GlobalLearningRate", "--fix_unroll=True",
         "--fix_unroll_length=5", "--fix_num_steps=10",
         "--fix_num_steps_eval=10", "--evaluation_epochs=1", "--seed=3"]
_ENV = dict(os.environ, PYTHONPATH=_ROOT)


def _metarun(train_dir, iterations, *extra, prelude=None):
  command = [sys.executable]
  if prelude:
    # Runs `prelude`, then metarun.py as its main program.
    command += ["-c", prelude + "\nimport runpy, sys\nsys.argv = sys.argv[1:]"
                "\nrunpy.run_path('metarun.py', run_name='__main__')",
                "metarun.py"]
  else:
    command += ["metarun.py"]
  command += ["--train_dir=" + train_dir,
              "--num_meta_iterations=%d" % iterations] + _FAST + list(extra)
  return subprocess.run(command, cwd=_ROOT, capture_output=True, text=True,
                        timeout=600, env=_ENV)


def _checksums(directory, skip=(lock.LOCK_FILE,)):
  out = {}
  for name in sorted(os.listdir(directory)):
    if name in skip:
      continue
    with open(os.path.join(directory, name), "rb") as f:
      out[name] = hashlib.sha256(f.read()).hexdigest()
  return out


def _checkpoint_sums(directory):
  return {k: v for k, v in _checksums(directory).items()
          if k.startswith("model.ckpt-")}


def _last_line(result):
  return result.stderr.strip().splitlines()[-1]


class RecoveryTest(test_util.TestCase):

  def setUp(self):
    super().setUp()
    self.root = self.get_temp_dir()
    self.train_dir = os.path.join(self.root, "a")
    self.logdir = os.path.join(self.train_dir, _LOG)

  def _first_run(self, iterations=3, *extra):
    result = _metarun(self.train_dir, iterations, *extra)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    return result

  def test_moved_and_copied_directories_resume_from_their_own_files(self):
    result = self._first_run(2, "--num_problems=2")
    # A fresh run over several problem draws does not claim to resume.
    self.assertNotIn("resuming", result.stdout)
    with open(os.path.join(self.logdir, "checkpoint")) as f:
      self.assertNotIn(self.root, f.read())
    moved = os.path.join(self.root, "b")
    shutil.move(self.train_dir, moved)
    before = _checkpoint_sums(os.path.join(moved, _LOG))
    copied = os.path.join(self.root, "c")
    shutil.copytree(moved, copied)
    result = _metarun(moved, 3, "--num_problems=2")
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertIn("resuming from %s/model.ckpt-4" % os.path.join(moved, _LOG),
                  result.stdout)
    self.assertIn("meta-iteration 5/6", result.stdout)
    self.assertNotIn("meta-iteration 4/6", result.stdout)
    after = _checkpoint_sums(os.path.join(moved, _LOG))
    for k in (1, 2, 3, 4):
      name = "model.ckpt-%d.index" % k
      self.assertEqual(after[name], before[name], name)
    self.assertIn("model.ckpt-6.index", after)
    # The copy still holds only the first run's checkpoints.
    self.assertEqual(_checkpoint_sums(os.path.join(copied, _LOG)), before)

  def test_a_garbage_or_dangling_state_file_resumes_from_the_files(self):
    self._first_run(2)
    state = os.path.join(self.logdir, "checkpoint")
    for content, iterations in ((b"\x00garbage\xff", 3),
                                (b'model_checkpoint_path: "model.ckpt-99"\n',
                                 4)):
      with open(state, "wb") as f:
        f.write(content)
      before = _checkpoint_sums(self.logdir)
      result = _metarun(self.train_dir, iterations)
      self.assertEqual(result.returncode, 0, result.stderr[-3000:])
      self.assertIn("resuming from %s/model.ckpt-%d" %
                    (self.logdir, iterations - 1), result.stdout)
      after = _checkpoint_sums(self.logdir)
      for name, digest in before.items():
        if not name.startswith("model.ckpt-0."):
          self.assertEqual(after[name], digest, name)
    with open(state) as f:
      listed = [l for l in f.read().splitlines() if l.startswith("all_")]
    # model.ckpt-0..4 and the start: the list does not shrink.
    self.assertLen(listed, 6)

  def test_a_kill_between_data_and_index_leaves_a_whole_checkpoint(self):
    self._first_run(1)
    # The second save of model.ckpt-0 dies after its data file is in place.
    prelude = (
        "import os\n"
        "from optimizer import checkpoint_files as cf\n"
        "original = cf._replace\n"
        "def dying(source, target):\n"
        "  original(source, target)\n"
        "  if target.endswith('model.ckpt-0.data-00000-of-00001'):\n"
        "    os._exit(137)\n"
        "cf._replace = dying\n")
    result = _metarun(self.train_dir, 3, prelude=prelude)
    self.assertEqual(result.returncode, 137)
    reader_view = checkpoint_files.readable(self.logdir, "model.ckpt-0")
    checkpoint_files.verify(reader_view)
    result = self._first_run(3)
    self.assertIn("completed the interrupted save of model.ckpt-0",
                  result.stdout)
    for name in checkpoint_files.listed(self.logdir):
      checkpoint_files.verify(os.path.join(self.logdir, name))
    self.assertFalse([n for n in os.listdir(self.logdir)
                      if n.startswith(".") and n != lock.LOCK_FILE])

  def test_a_damaged_newest_checkpoint_falls_back_to_the_previous(self):
    self._first_run(3)
    data = os.path.join(self.logdir, "model.ckpt-3.data-00000-of-00001")
    with open(data, "r+b") as f:
      f.truncate(5)
    result = _metarun(self.train_dir, 4)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertIn("model.ckpt-3: unreadable checkpoint", result.stdout)
    self.assertRegex(result.stdout, r"using model\.ckpt-[02] instead")

  def test_refusals_change_nothing(self):
    self._first_run(2)
    before = _checksums(self.logdir)
    # Another process holds the directory.
    with lock.DirectoryLock(self.logdir, "test holder"):
      result = _metarun(self.train_dir, 3)
    self.assertEqual(result.returncode, 1)
    self.assertEqual(_last_line(result),
                     "metarun.py: %s is in use by test holder (PID %d); wait "
                     "for it to finish or use another directory" %
                     (self.logdir, os.getpid()))
    self.assertEqual(_checksums(self.logdir), before)
    # A NaN meta-learning rate (it made every later checkpoint NaN).
    result = _metarun(self.train_dir, 3, "--meta_learning_rate=nan")
    self.assertEqual(result.returncode, 1)
    self.assertEqual(_last_line(result), "metarun.py: --meta_learning_rate=nan:"
                     " must be a finite number")
    self.assertEqual(_checksums(self.logdir), before)
    # Every checkpoint damaged: nothing to resume from, nothing overwritten.
    for name in os.listdir(self.logdir):
      if name.endswith(".data-00000-of-00001"):
        with open(os.path.join(self.logdir, name), "r+b") as f:
          f.truncate(3)
    before = _checksums(self.logdir)
    result = _metarun(self.train_dir, 3)
    self.assertEqual(result.returncode, 1)
    self.assertIn("holds checkpoints but none reads back whole",
                  _last_line(result))
    self.assertLen(result.stderr.strip().splitlines()[-1:], 1)
    self.assertEqual(_checksums(self.logdir), before)

  def test_another_optimizer_shape_is_named_and_changes_nothing(self):
    logdir = os.path.join(self.root, "h", "HierarchicalRNN_GRUCell_20_2")
    values = settings.defaults()
    with tf.Graph().as_default():
      settings.optimizer_spec(values).build()
      tf.train.get_or_create_global_step()
      with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        os.makedirs(logdir)
        checkpoint_files.save(sess, tf.train.Saver(), logdir, 1)
    settings.save(logdir, values)
    command = [sys.executable, "metarun.py",
               "--train_dir=" + os.path.dirname(logdir),
               "--num_gradient_scales=3", "--num_meta_iterations=1"]
    before = _checksums(logdir)
    result = subprocess.run(command, cwd=_ROOT, capture_output=True,
                            text=True, timeout=600, env=_ENV)
    self.assertEqual(result.returncode, 1)
    # optimizer.json names the setting.
    self.assertEqual(_last_line(result), "metarun.py: --num_gradient_scales=3"
                     ": the checkpoints in %s were trained with "
                     "num_gradient_scales=4 (optimizer.json); resume with "
                     "those, or start afresh with another --train_dir" %
                     logdir)
    self.assertEqual(_checksums(logdir), before)
    # Without it (checkpoints of the original code), the shapes do.
    os.remove(os.path.join(logdir, settings.CONFIG_FILE))
    before = _checksums(logdir)
    result = subprocess.run(command, cwd=_ROOT, capture_output=True,
                            text=True, timeout=600, env=_ENV)
    self.assertEqual(result.returncode, 1)
    self.assertRegex(_last_line(result),
                     r"^metarun\.py: .*model\.ckpt-1 does not fit this "
                     r"optimizer: shape mismatch: LOL/\S+ is \[\d+(, \d+)*\] in "
                     r"the checkpoint, \[\d+(, \d+)*\] here")
    self.assertEqual(_checksums(logdir), before)

  def test_a_run_without_finite_evaluation_fails_in_one_line(self):
    result = _metarun(self.train_dir, 2, "--meta_learning_rate=1e6")
    self.assertEqual(result.returncode, 1)
    self.assertIn("warning: meta-iteration 1/2: the meta-objective is",
                  result.stdout)
    self.assertIn("warning: meta-iteration 2/2: the evaluation cost is",
                  result.stdout)
    self.assertEqual(_last_line(result),
                     "metarun.py: no evaluation of this run was finite (see "
                     "the warnings above), so model.ckpt-0 was not written; "
                     "lower --meta_learning_rate or check the problem")
    self.assertNotIn("evaluate with", result.stdout)

  def test_a_corrupt_mnist_file_is_named_in_one_line(self):
    data_dir = os.path.join(self.root, "data")
    test_util.write_fake_mnist(os.path.join(data_dir, "mnist"),
                               num_train=10, num_test=40, gzipped=True)
    # Meta-training reads the training split.
    path = os.path.join(data_dir, "mnist", "train-labels-idx1-ubyte.gz")
    with open(path, "wb") as f:
      f.write(b"garbage, not gzip")
    self._first_run(1)
    before = _checksums(self.logdir)
    result = _metarun(self.train_dir, 2, "--include_mnist_mlp_problems",
                      "--data_dir=" + data_dir)
    self.assertEqual(result.returncode, 1)
    self.assertNotIn("Traceback", result.stderr)
    self.assertRegex(_last_line(result),
                     r"^metarun\.py: %s: not a gzip'd IDX .*; delete "
                     r"it to download it again" % path)
    self.assertEqual(_checksums(self.logdir), before)

  def test_optimizer_json_always_describes_the_checkpoints(self):
    config = os.path.join(self.logdir, settings.CONFIG_FILE)
    # A first run that fails on its data never started: no optimizer.json.
    data_dir = os.path.join(self.root, "data")
    test_util.write_fake_mnist(os.path.join(data_dir, "mnist"),
                               num_train=10, num_test=40, gzipped=True)
    with open(os.path.join(data_dir, "mnist", "train-images-idx3-ubyte.gz"),
              "r+b") as f:
      f.truncate(100)
    result = _metarun(self.train_dir, 2, "--include_mnist_mlp_problems",
                      "--data_dir=" + data_dir)
    self.assertEqual(result.returncode, 1, result.stderr[-3000:])
    self.assertFalse(os.path.exists(config))
    # A file left by a run that wrote no checkpoint (as before this fix, or
    # one stopped while building its graph) describes nothing: replaced.
    settings.save(self.logdir, dict(settings.defaults(),
                                    optimizer="GlobalLearningRate"))
    self._first_run(2, "--use_numerator_epsilon=True")
    self.assertTrue(settings.load(self.logdir)["use_numerator_epsilon"])
    # A resume with other settings would train (and the file describe)
    # another optimizer: refused, nothing changed.
    before = _checksums(self.logdir)
    result = _metarun(self.train_dir, 3, "--use_numerator_epsilon=False",
                      "--use_attention=True")
    self.assertEqual(result.returncode, 1, result.stderr[-3000:])
    self.assertEqual(
        _last_line(result),
        "metarun.py: --use_attention=True, --use_numerator_epsilon=False: the "
        "checkpoints in %s were trained with use_attention=False, "
        "use_numerator_epsilon=True (optimizer.json); resume with those, or "
        "start afresh with another --train_dir" % self.logdir)
    self.assertEqual(_checksums(self.logdir), before)
    # The same settings resume; the file is left as it is.
    result = _metarun(self.train_dir, 3, "--use_numerator_epsilon=True")
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertIn("meta-iteration 3/3", result.stdout)
    self.assertEqual(_checksums(self.logdir)[settings.CONFIG_FILE],
                     before[settings.CONFIG_FILE])
    # A hand-edited file is named with its key.
    with open(config) as f:
      text = f.read()
    with open(config, "w") as f:
      f.write(text.replace('"cell_size": 20', '"cell_size": "twenty"'))
    result = _metarun(self.train_dir, 4, "--use_numerator_epsilon=True")
    self.assertEqual(result.returncode, 1, result.stderr[-3000:])
    self.assertEqual(_last_line(result), 'metarun.py: %s: "cell_size": '
                     '"twenty": expected an integer' % config)

  def test_a_full_disk_stops_in_one_line_and_a_rerun_resumes(self):
    disk = self.make_tempdir()  # removed after the unmount
    mounted = test_util.mount_small_disk(self, disk)
    train_dir = os.path.join(disk, "a")
    logdir = os.path.join(train_dir, _LOG)
    result = _metarun(train_dir, 2)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    kept = lambda: {k: v for k, v in _checksums(logdir).items()
                    if not k.startswith("events.out.")}
    before = kept()
    prelude, filler = None, None
    if mounted:
      filler = test_util.fill_disk(disk)
    else:
      # Where no file system can be mounted: the checkpoint writer fails as
      # TensorFlow's does on a full disk.
      prelude = (
          "import tensorflow.compat.v1 as tf\n"
          "def full(self, sess, path, *args, **kwargs):\n"
          "  raise tf.errors.ResourceExhaustedError(\n"
          "      None, None, path + '; No space left on device')\n"
          "tf.train.Saver.save = full\n")
    result = _metarun(train_dir, 4, prelude=prelude)
    self.assertEqual(result.returncode, 1, result.stderr[-3000:])
    self.assertNotIn("Traceback", result.stderr)
    line = ("metarun.py: no space left on device in %s; the checkpoints "
            "there are whole: free some space and rerun the same command to "
            "resume" % logdir)
    self.assertEqual(_last_line(result), line)
    self.assertEqual([l for l in result.stderr.splitlines()
                      if l.startswith("metarun.py")], [line])
    self.assertEqual(kept(), before)
    if filler:
      os.remove(filler)
    result = _metarun(train_dir, 4)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertIn("resuming from %s/model.ckpt-2" % logdir, result.stdout)
    self.assertIn("meta-iteration 3/4", result.stdout)

  def test_leftovers_of_killed_writers_are_removed_at_start(self):
    self._first_run(1)
    leftovers = ["model.ckpt-2.index.tempstate17", "checkpoint.tmp9f3e",
                 "optimizer.json.tmp-4242", ".model.ckpt-2.partial.index"]
    for name in leftovers:
      open(os.path.join(self.logdir, name), "w").close()
    result = self._first_run(2)
    self.assertIn("removed 4 temporary file(s) left by an interrupted run",
                  result.stdout)
    for name in leftovers:
      self.assertNotIn(name, os.listdir(self.logdir))

  def _interrupt(self, signum, train_dir):
    process = subprocess.Popen(
        [sys.executable, "metarun.py", "--train_dir=" + train_dir,
         "--num_meta_iterations=100000"] + _FAST, cwd=_ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_ENV)
    progress_lines = 0
    for line in process.stdout:
      progress_lines += line.startswith("meta-iteration ")
      if progress_lines == 3:
        break
    process.send_signal(signum)
    rest, errors = process.communicate(timeout=300)
    return process.returncode, rest, errors

  def test_sigint_and_sigterm_stop_in_one_line_and_resume(self):
    for signum, status, name in ((signal.SIGINT, 130, "SIGINT"),
                                 (signal.SIGTERM, 143, "SIGTERM")):
      train_dir = os.path.join(self.root, name)
      logdir = os.path.join(train_dir, _LOG)
      returncode, _, errors = self._interrupt(signum, train_dir)
      self.assertEqual(returncode, status, errors[-2000:])
      last = errors.strip().splitlines()[-1]
      self.assertRegex(
          last, r"^metarun\.py: interrupted \(%s\) at meta-iteration (\d+) "
          r"of 100000; rerun the same command to resume from "
          r"model\.ckpt-(\d+)$" % name)
      self.assertNotIn("Traceback", errors)
      resume_from = last.rsplit(" ", 1)[-1]
      checkpoint_files.verify(os.path.join(logdir, resume_from))
      self.assertEqual(checkpoint_files.latest_complete(logdir),
                       os.path.join(logdir, resume_from))


if __name__ == "__main__":
  tf.test.main()
