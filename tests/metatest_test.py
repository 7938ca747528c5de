"""Tests of metatest.py: flags, bad inputs, result files, end-to-end runs."""

from tests import test_util

import dataclasses
import fcntl
import fnmatch
import hashlib
import io
import json
import os
import pickle
import signal
import subprocess
import sys
from unittest import mock

import numpy as np
import tensorflow.compat.v1 as tf

import metatest
from evaluation import campaign
from evaluation import config
from evaluation import flatness
from evaluation import optimizers
from evaluation import summary
from evaluation import tuning
from optimizer import checkpoints
from optimizer import settings
from run_control import atomic
from run_control import lock

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The flags of the original evaluation program besides the optimizer
# settings (whose defaults settings_test checks), with their defaults
# (training_and_evaluation.md, sections 1.4 and 1.5).
ORIGINAL_FLAGS = {
    "train_dir": "opt/", "save_dir": "opt/", "test_optimizer": "L2o",
    "num_testing_itrs": 100, "model_name": "mt", "restore_model_name": "",
    "task": 0, "worker_tasks": 1, "num_problems": 1, "num_meta_iterations": 5,
    "num_unroll_scale": 10, "min_num_unrolls": 4,
    "num_partial_unroll_itr_scale": 50, "min_num_itr_partial_unroll": 10,
    "meta_learning_rate": 1e-6, "gradient_clip_level": 1e4, "ps_tasks": 0,
    "nan_l2_reg": 1e-2, "l2_reg": 0., "rms_decay": 0.9, "rms_epsilon": 1e-20,
    "set_profiling": False, "reset_rnn_params": True, "l2_reg_scale": 1e-3,
}
INCLUDE_FLAGS = [
    "mnist_mlp", "mnist_mlp_relu", "mnist_mlp_deeper", "mnist_conv",
    "mnist_conv_orig", "cifar10_conv", "mnist_conv_wider",
    "mnist_conv_4layers", "cifar10_conv_4layers", "vgg16", "quadratic",
    "noisy_quadratic", "large_quadratic", "bowl", "noisy_bowl",
    "softmax_2_class", "noisy_softmax_2_class", "optimization_test",
    "noisy_optimization_test", "fully_connected_random_2_class", "matmul",
    "log_objective", "rescale", "norm", "noisy_norm", "sum", "noisy_sum",
    "sparse_gradient", "sparse_softmax", "one_hot_sparse_softmax",
    "sum_of_quadratics", "projection_quadratic", "outward_snake",
    "dependency_chain", "min_max_well",
]


def save_initial_optimizer(logdir, **overrides):
  """A checkpoint of a freshly initialised optimizer (sane meta-params)."""
  values = settings.complete(overrides)
  with tf.Graph().as_default():
    settings.optimizer_spec(values, random_seed=0).build()
    tf.train.get_or_create_global_step()
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      os.makedirs(logdir, exist_ok=True)
      return tf.train.Saver().save(sess, os.path.join(logdir, "model.ckpt-0"))


def _environment():
  return dict(os.environ, PYTHONPATH=_ROOT, PYTHONUNBUFFERED="1")


def run_program(script, args, timeout=600):
  return subprocess.run([sys.executable, os.path.join(_ROOT, script)] + args,
                        capture_output=True, text=True, cwd=_ROOT,
                        env=_environment(), timeout=timeout)


def start_program(script, args):
  """The program running in the background, its output read by pipes."""
  return subprocess.Popen([sys.executable, os.path.join(_ROOT, script)] +
                          args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, cwd=_ROOT,
                          env=_environment())


def checksums(*roots):
  """Path -> SHA-256 of every file below the `roots`."""
  result = {}
  for root in roots:
    for name in test_util.file_tree(root):
      path = os.path.join(root, name)
      if os.path.isfile(path):
        with open(path, "rb") as f:
          result[path] = hashlib.sha256(f.read()).hexdigest()
  return result


def last_line(stderr):
  """The last line of a program's standard error (TF logs come before)."""
  lines = stderr.strip().splitlines()
  return lines[-1] if lines else ""


def leftovers(root):
  """The temporary files of interrupted writers below `root`."""
  return [name for name in test_util.file_tree(root)
          if any(fnmatch.fnmatch(os.path.basename(name), pattern)
                 for pattern in atomic.LEFTOVER_PATTERNS)]


def _optimizers(*args):
  """The `config.Optimizers` of a metatest.py command line."""
  values, explicit = metatest.parse_flags(["metatest.py"] + list(args))
  return metatest.campaign_settings(values, explicit).optimizers


class FlagTest(test_util.TestCase):

  def test_every_original_flag_has_its_default(self):
    values, explicit = metatest.parse_flags(["metatest.py"])
    expected = dict(ORIGINAL_FLAGS, **settings.defaults())
    for stem in INCLUDE_FLAGS:
      expected["include_%s_problems" % stem] = False
    for name, default in expected.items():
      self.assertIn(name, values)
      self.assertEqual(values[name], default, name)
    self.assertEqual(explicit, set())

  def test_the_hard_coded_values_became_flags_with_the_original_values(self):
    values, _ = metatest.parse_flags(["metatest.py"])
    self.assertEqual(metatest.seeds(values), [6, 12, 18, 24, 30])
    settings_ = metatest.campaign_settings(values)
    self.assertEqual(settings_.runs.seeds, (6, 12, 18, 24, 30))
    grids = [optimizers.baseline_grid(settings_.optimizers, name)
             for name in ("SGD", "Adam", "Adagrad")]
    self.assertEqual([[p.low for p in grid] for grid in grids],
                     [[1e-3], [1e-4], [1e-5]])

  def test_a_learning_rate_flag_takes_one_value_or_a_grid(self):
    self.assertEqual([p.low for p in optimizers.baseline_grid(
        _optimizers("--adam_learning_rate=0.003"), "Adam")], [0.003])
    self.assertEqual([p.low for p in optimizers.baseline_grid(
        _optimizers("--rmsprop_learning_rate=1e-4,3e-4,1e-3"), "RMSProp")],
                     [1e-4, 3e-4, 1e-3])

  def test_the_learned_grid_gets_the_size_of_the_baseline_grids(self):
    out = io.StringIO()
    optimizer_values = settings.complete({})
    grids = optimizers.grids(
        _optimizers("--compare_with=Adam",
                    "--adam_learning_rate=1e-4,1e-3,1e-2"),
        optimizer_values, out)
    self.assertLen(grids["L2o"], 3)
    self.assertEqual(grids["L2o"][0].label, "1e-06:0.01")
    self.assertIn("default 3-point grid", out.getvalue())
    given = _optimizers("--compare_with=Adam", "--init_lr_grid=1e-3",
                        "--adam_learning_rate=1e-4,1e-3,1e-2")
    grids = optimizers.grids(given, optimizer_values, out)
    self.assertEqual([p.label for p in grids["L2o"]], ["1e-06:0.01", "0.001"])
    # An optimizer without initial learning rates has one point, and
    # cannot be given a grid.
    other = settings.complete({"optimizer": "GlobalLearningRate"})
    self.assertLen(optimizers.grids(
        dataclasses.replace(given, initial_learning_rates=()), other,
        out)["L2o"], 1)
    with self.assertRaisesRegex(metatest.FlagError,
                                "^--init_lr_grid: the GlobalLearningRate "):
      optimizers.grids(given, other, out)

  def test_every_setting_flag_reaches_its_config_field(self):
    values, explicit = metatest.parse_flags([
        "metatest.py", "--train_dir=t", "--save_dir=s", "--model_name=m",
        "--restore_model_name=model.ckpt-3", "--test_optimizer=Adam",
        "--compare_with=L2o,SGD", "--num_testing_itrs=7", "--seeds=3,1",
        "--noseed_batch_order", "--record_every=2", "--log_every=5",
        "--data_dir=d", "--init_lr_grid=1e-3,1e-5:1e-4",
        "--adam_learning_rate=1e-3,1e-2", "--metrics_every=4",
        "--metrics_subset=9", "--nohessian_metrics",
        "--hessian_lanczos_steps=6", "--hessian_trace_probes=2",
        "--hessian_max_samples=11", "--hessian_spectrum", "--noplot",
        "--include_mnist_conv_heldout_problems", "--include_lasso_problems",
        "--include_mnist_mlp_problems", "--max_lr=0.1", "--task=3"])
    settings_ = metatest.campaign_settings(values, explicit, ["p", "-x"])
    self.assertEqual(settings_.optimizers, config.Optimizers(
        test_optimizer="Adam", compare_with=("L2o", "SGD"), train_dir="t",
        checkpoint_name="model.ckpt-3",
        initial_learning_rates=("1e-3", "1e-5:1e-4"),
        learning_rates={"SGD": ("0.001",), "Adam": ("1e-3", "1e-2"),
                        "Adagrad": ("1e-05",), "RMSProp": ("0.0001",),
                        "Momentum": ("0.001",)},
        settings=settings.complete({"max_lr": 0.1}),
        explicit_settings=frozenset(["max_lr"])))
    self.assertEqual(settings_.optimizers.names, ["Adam", "L2o", "SGD"])
    # The problem sets in the registry's order, whatever the flags' order.
    self.assertEqual(settings_.runs, config.Runs(
        num_steps=7, seeds=(3, 1), seed_batch_order=False, record_every=2,
        log_every=5, data_dir="d",
        problem_sets=("mnist_mlp", "lasso", "mnist_conv_heldout")))
    self.assertEqual(settings_.measurements, config.Measurements(
        metrics_every=4, metrics_subset=9, hessian=False, lanczos_steps=6,
        trace_probes=2, hessian_max_samples=11, spectrum=True))
    self.assertEqual(settings_.output, config.Output(
        save_dir="s", model_name="m", plot=False, command=("p", "-x")))
    # The flag defaults are the configs' defaults.
    values, _ = metatest.parse_flags(["metatest.py"])
    defaults = metatest.campaign_settings(values)
    self.assertEqual(defaults.runs, config.Runs())
    self.assertEqual(defaults.measurements, config.Measurements())
    self.assertEqual(defaults.output, config.Output())
    self.assertEqual(dataclasses.replace(defaults.optimizers,
                                         learning_rates={}),
                     config.Optimizers())

  def test_an_initial_learning_rate_point_sets_the_learned_rates(self):
    # Read back from the optimizer's state after the first step (the state
    # is made then). An optimizer with freshly initialised meta-parameters
    # leaves its learning rates where they start, so a single-value point
    # shows exactly, and a range point spreads them over its range.
    optimizer_values = settings.complete({})
    rates = {}
    for text in ("0.001", "1e-05", "1e-06:0.01"):
      point = tuning.parse_initial_learning_rates(
          [text], "init_lr_grid", (1e-6, 1e-2))[-1]
      factory = optimizers.factory("L2o", optimizer_values, 7, point)
      with tf.Graph().as_default():
        var = tf.Variable(np.linspace(-1., 1., 40).astype(np.float32))
        optimizer = factory()
        step = optimizer.minimize(tf.reduce_sum(tf.square(var)),
                                  var_list=[var])
        with tf.Session() as sess:
          sess.run(tf.global_variables_initializer())
          sess.run(step)
          state = sess.run(optimizer.variable_state(var))
      rates[text] = np.exp(state["log_learning_rate"])
    self.assertAllClose(rates["0.001"], np.full([40, 1], 1e-3), rtol=1e-5)
    self.assertAllClose(rates["1e-05"], np.full([40, 1], 1e-5), rtol=1e-5)
    spread = rates["1e-06:0.01"]
    self.assertAllInRange(spread, 1e-6, 1e-2)
    self.assertGreater(spread.max() / spread.min(), 3.)


class BadInputTest(test_util.TestCase):

  def setUp(self):
    super().setUp()
    self.train_dir = self.make_tempdir()
    self.logdir = os.path.join(self.train_dir, "HierarchicalRNN_GRUCell_20_2")
    save_initial_optimizer(self.logdir)

  def _error(self, *args):
    values, explicit = metatest.parse_flags(
        ["metatest.py", "--train_dir=" + self.train_dir,
         "--save_dir=" + os.path.join(self.train_dir, "out"),
         "--num_testing_itrs=3"] + list(args))
    with self.assertRaises(metatest.FlagError) as caught:
      metatest.run(values, explicit, out=io.StringIO())
    message = str(caught.exception)
    self.assertNotIn("\n", message)
    self.assertFalse(os.path.exists(os.path.join(self.train_dir, "out")))
    return message

  def test_unknown_optimizers(self):
    self.assertIn("--test_optimizer: unknown optimizer Lion",
                  self._error("--test_optimizer=Lion", "--include_bowl_"
                              "problems"))
    self.assertIn("--compare_with: unknown optimizer adam",
                  self._error("--compare_with=adam",
                              "--include_bowl_problems"))

  def test_bad_seeds_and_counts(self):
    self.assertIn("--seeds=6,x: expected comma-separated integers",
                  self._error("--seeds=6,x", "--include_bowl_problems"))
    self.assertIn("--seeds=6,12,6: seed 6 is listed more than once",
                  self._error("--seeds=6,12,6", "--include_bowl_problems"))
    self.assertIn("--seeds=1,2,1,2: seeds 1 and 2 are listed more than once",
                  self._error("--seeds=1,2,1,2", "--include_bowl_problems"))
    # NumPy's generators take seeds in [0, 2^32) only.
    self.assertIn("--seeds=6,-1: seed -1 is out of range; expected integers "
                  "in [0, 2^32)",
                  self._error("--seeds=6,-1", "--include_bowl_problems"))
    self.assertIn("--seeds=4294967296: seed 4294967296 is out of range",
                  self._error("--seeds=4294967296", "--include_bowl_problems"))
    values, _ = metatest.parse_flags(["metatest.py", "--seeds=0,4294967295"])
    self.assertEqual(metatest.seeds(values), [0, 2**32 - 1])
    self.assertIn("--num_testing_itrs=0",
                  self._error("--num_testing_itrs=0",
                              "--include_bowl_problems"))
    self.assertIn("--adam_learning_rate: '-1' is not a positive number",
                  self._error("--adam_learning_rate=-1",
                              "--include_bowl_problems"))
    self.assertIn("--sgd_learning_rate: 0.1 is listed twice",
                  self._error("--sgd_learning_rate=0.1,0.1",
                              "--include_bowl_problems"))
    self.assertIn("--init_lr_grid: '1e-2:1e-3': the range's low end",
                  self._error("--init_lr_grid=1e-2:1e-3",
                              "--include_bowl_problems"))
    self.assertIn("--hessian_lanczos_steps=0",
                  self._error("--hessian_lanczos_steps=0",
                              "--include_bowl_problems"))

  def test_no_problem_or_a_problem_set_that_never_existed(self):
    self.assertIn("no problem selected", self._error())
    self.assertIn("--include_vgg16_problems: the original defines",
                  self._error("--include_vgg16_problems"))

  def test_wrong_train_dir(self):
    message = self._error("--include_bowl_problems",
                          "--train_dir=" + os.path.join(self.train_dir, "x"))
    self.assertRegex(message, "--train_dir=.*: no log directory .*x/"
                     "HierarchicalRNN_GRUCell_20_2")

  def test_missing_checkpoint(self):
    message = self._error("--include_bowl_problems",
                          "--restore_model_name=model.ckpt-4")
    self.assertRegex(message, "--restore_model_name: no checkpoint "
                     "model.ckpt-4 in .* \\(found: model.ckpt-0\\)")

  def test_checkpoint_of_another_optimizer_shape(self):
    message = self._error("--include_bowl_problems",
                          "--num_gradient_scales=3")
    self.assertRegex(message, "does not fit this optimizer: shape mismatch")

  def test_a_hand_edited_optimizer_json_is_named_with_its_setting(self):
    path = os.path.join(self.logdir, settings.CONFIG_FILE)
    for text, expected in (
        ('"optimizer": "Bogus"', '"optimizer": "Bogus": unknown optimizer'),
        ('"min_lr": NaN', '"min_lr": NaN: must be a finite number'),
        ('"cell_size": "twenty"', '"cell_size": "twenty": expected an '
         'integer'),
        ('"num_cells": 2.7', '"num_cells": 2.7: expected an integer')):
      with open(path, "w") as f:
        f.write("{%s}\n" % text)
      self.assertIn("--train_dir: %s: %s" % (path, expected),
                    self._error("--include_bowl_problems"))

  def test_bad_optimizer_flags_are_named(self):
    self.assertIn("--max_lr=nan: must be a finite number",
                  self._error("--include_bowl_problems", "--max_lr=nan"))

  def test_the_program_prints_one_line_without_traceback(self):
    result = run_program("metatest.py", [
        "--train_dir=" + os.path.join(self.train_dir, "missing"),
        "--include_mnist_mlp_relu_problems"], timeout=120)
    self.assertEqual(result.returncode, 1)
    self.assertNotIn("Traceback", result.stderr)
    self.assertRegex(result.stderr.strip().splitlines()[-1],
                     "^metatest.py: --train_dir=.*: no log directory")


class ProgramErrorTest(test_util.TestCase):
  """Bad inputs of the program: one line, status 1, every file unchanged."""

  def setUp(self):
    super().setUp()
    root = self.make_tempdir()
    self.train_dir = os.path.join(root, "train")
    self.logdir = os.path.join(self.train_dir, "HierarchicalRNN_GRUCell_20_2")
    save_initial_optimizer(self.logdir)
    self.data_dir = os.path.join(root, "data")
    test_util.write_fake_mnist(os.path.join(self.data_dir, "mnist"),
                               num_train=10, num_test=40, gzipped=True)
    # The files of an earlier run, which a failed one must leave as they are.
    self.save_dir = os.path.join(root, "eval")
    os.makedirs(self.save_dir)
    for name, text in (("summary.json", '{"format": 2, "results": []}\n'),
                       ("seed6_eval_loss_record.pickle-mt", "old")):
      with open(os.path.join(self.save_dir, name), "w") as f:
        f.write(text)

  def _fails(self, *args):
    """Runs metatest.py; checks the failure; returns its one line."""
    before = checksums(self.train_dir, self.data_dir, self.save_dir)
    result = run_program("metatest.py", [
        "--train_dir=" + self.train_dir, "--save_dir=" + self.save_dir,
        "--data_dir=" + self.data_dir, "--include_mnist_mlp_relu_problems",
        "--num_testing_itrs=5", "--seeds=6", "--noplot"] + list(args),
                         timeout=300)
    self.assertEqual(result.returncode, 1, result.stderr[-2000:])
    self.assertNotIn("Traceback", result.stderr)
    line = last_line(result.stderr)
    self.assertTrue(line.startswith("metatest.py: "), result.stderr[-2000:])
    self.assertEqual(
        [l for l in result.stderr.splitlines()
         if l.startswith("metatest.py")], [line])
    self.assertEqual(checksums(self.train_dir, self.data_dir, self.save_dir),
                     before)
    return line

  def test_a_corrupt_mnist_file_is_named_in_one_line(self):
    path = os.path.join(self.data_dir, "mnist", "t10k-images-idx3-ubyte.gz")
    with open(path, "rb") as f:
      data = f.read()
    with open(path, "wb") as f:
      f.write(data[:len(data) // 2])
    self.assertEqual(
        self._fails("--test_optimizer=SGD"),
        "metatest.py: %s: not a complete gzip'd IDX image or label file "
        "(corrupt gzip stream: Compressed file ended before the "
        "end-of-stream marker was reached); delete it to download it again "
        "(or replace it with a good copy)" % path)

  def test_duplicate_seeds_are_rejected_before_anything_is_written(self):
    self.assertEqual(self._fails("--seeds=6,12,6"),
                     "metatest.py: --seeds=6,12,6: seed 6 is listed more "
                     "than once; expected distinct seeds (each run writes "
                     "its seed's files)")

  def test_a_truncated_checkpoint_is_named_in_one_line(self):
    data_file = os.path.join(self.logdir,
                             "model.ckpt-0.data-00000-of-00001")
    with open(data_file, "r+b") as f:
      f.truncate(os.path.getsize(data_file) // 2)
    line = self._fails("--restore_model_name=model.ckpt-0")
    self.assertIn("model.ckpt-0", line)

  def test_a_save_dir_in_use_is_refused_with_the_holder_s_pid(self):
    with lock.DirectoryLock(self.save_dir, "metatest.py"):
      line = self._fails("--test_optimizer=SGD")
    self.assertEqual(line, "metatest.py: %s is in use by metatest.py (PID "
                     "%d); wait for it to finish or use another directory" %
                     (self.save_dir, os.getpid()))


class CorruptCheckpointTest(test_util.TestCase):

  def test_a_checkpoint_that_fails_its_checksum_is_rejected(self):
    train_dir = self.make_tempdir()
    logdir = os.path.join(train_dir, "HierarchicalRNN_GRUCell_20_2")
    save_initial_optimizer(logdir)
    data_file = os.path.join(logdir, "model.ckpt-0.data-00000-of-00001")
    with open(data_file, "r+b") as f:
      f.seek(os.path.getsize(data_file) // 2)
      byte = f.read(1)
      f.seek(-1, os.SEEK_CUR)
      f.write(bytes([byte[0] ^ 0xff]))
    save_dir = os.path.join(train_dir, "eval")
    values, explicit = metatest.parse_flags([
        "metatest.py", "--train_dir=" + train_dir, "--save_dir=" + save_dir,
        "--include_bowl_problems", "--num_testing_itrs=3", "--seeds=1",
        "--restore_model_name=model.ckpt-0", "--noplot"])
    before = checksums(train_dir)
    with self.assertRaises((metatest.FlagError,
                            checkpoints.CheckpointError)) as caught:
      metatest.run(values, explicit, out=io.StringIO())
    self.assertNotIn("\n", str(caught.exception))
    self.assertIn("model.ckpt-0", str(caught.exception))
    self.assertEqual(checksums(train_dir), before)
    self.assertFalse(os.path.exists(save_dir))


class InterruptTest(test_util.TestCase):
  """SIGINT and SIGTERM: one line, 130 or 143, every file whole."""

  def _interrupt(self, signum):
    save_dir = os.path.join(self.make_tempdir(), "eval")
    os.makedirs(save_dir)
    old_summary = os.path.join(save_dir, "summary.json")
    with open(old_summary, "w") as f:
      f.write('{"format": 2, "results": [], "note": "an earlier run"}\n')
    before = checksums(save_dir)
    steps = 3000
    child = start_program("metatest.py", [
        "--train_dir=/nonexistent", "--save_dir=" + save_dir,
        "--test_optimizer=SGD", "--include_lasso_problems",
        "--num_testing_itrs=%d" % steps, "--seeds=1,2", "--log_every=100",
        "--nohessian_metrics", "--noplot"])
    try:
      # The second seed's first progress line: the first seed's files are
      # written, the second seed is in its steps.
      seen, second = [], False
      for line in child.stdout:
        seen.append(line)
        second = second or line.startswith("[2/2] testing")
        if second and line.startswith("  step "):
          break
      else:
        self.fail("no progress line of the second seed: %s" % "".join(seen))
      child.send_signal(signum)
      _, stderr = child.communicate(timeout=120)
    finally:
      if child.poll() is None:
        child.kill()
        child.wait()
    self.assertEqual(child.returncode, 128 + signum, stderr[-2000:])
    self.assertNotIn("Traceback", stderr)
    name = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}[signum]
    self.assertEqual(
        last_line(stderr),
        "metatest.py: interrupted (%s) after 1 of 2 runs; the finished runs' "
        "files are complete, summary.json is left as it was (it is written "
        "at the end); rerun the same command to redo the rest" % name)
    after = checksums(save_dir)
    self.assertEqual(after[old_summary], before[old_summary])
    with open(os.path.join(save_dir, "seed1_eval_loss_record.pickle-mt"),
              "rb") as f:
      self.assertLen(pickle.load(f), steps)
    self.assertEqual(sorted(os.path.relpath(p, save_dir) for p in after),
                     [".lock", "seed1_eval_loss_record.pickle-mt",
                      "summary.json"])
    self.assertEqual(leftovers(save_dir), [])
    # The lock went with the process.
    lock.DirectoryLock(save_dir, "test").acquire().release()

  def test_sigint_stops_with_one_line_and_status_130(self):
    self._interrupt(signal.SIGINT)

  def test_sigterm_stops_with_one_line_and_status_143(self):
    self._interrupt(signal.SIGTERM)


class FullDiskTest(test_util.TestCase):

  def test_a_full_disk_stops_in_one_line_and_keeps_earlier_files(self):
    disk = self.make_tempdir()
    mounted = test_util.mount_small_disk(self, disk)
    save_dir = os.path.join(disk, "eval")
    flags = ["--save_dir=" + save_dir, "--test_optimizer=SGD",
             "--include_lasso_problems", "--seeds=1,2", "--nohessian_metrics",
             "--noplot"]
    values, explicit = metatest.parse_flags(
        ["metatest.py", "--num_testing_itrs=5"] + flags)
    metatest.run(values, explicit, out=io.StringIO())
    # The lock file holds its holder's PID.
    kept = lambda: {k: v for k, v in checksums(save_dir).items()
                    if os.path.basename(k) != lock.LOCK_FILE}
    before = kept()
    prelude, filler = "", None
    if mounted:
      filler = test_util.fill_disk(disk)
    else:
      # Where no file system can be mounted: every atomic write fails as
      # on a full disk (after the temporary file is made, as there).
      prelude = (
          "import errno\n"
          "from run_control import atomic\n"
          "def full(fd):\n"
          "  raise OSError(errno.ENOSPC, 'No space left on device')\n"
          "atomic.os.fsync = full\n")
    command = [sys.executable, "-c", prelude + (
        "import runpy, sys\nsys.argv = sys.argv[1:]\n"
        "runpy.run_path('metatest.py', run_name='__main__')"),
               "metatest.py", "--num_testing_itrs=300"] + flags
    result = subprocess.run(command, capture_output=True, text=True,
                            cwd=_ROOT, env=_environment(), timeout=300)
    self.assertEqual(result.returncode, 1, result.stderr[-2000:])
    self.assertNotIn("Traceback", result.stderr)
    self.assertEqual(
        [l for l in result.stderr.splitlines() if l.startswith("metatest")],
        ["metatest.py: no space left on device in %s; the finished runs' "
         "files are complete, summary.json is left as it was: free some "
         "space and rerun the same command" % save_dir])
    self.assertEqual(kept(), before)
    self.assertEqual(leftovers(save_dir), [])
    if filler:
      os.remove(filler)
      values, explicit = metatest.parse_flags(
          ["metatest.py", "--num_testing_itrs=300"] + flags)
      metatest.run(values, explicit, out=io.StringIO())
      entry = summary.read_summary(save_dir)["results"][0]["per_seed"][1]
      self.assertEqual(entry["num_steps"], 300)


class RepeatabilityTest(test_util.TestCase):

  def test_two_runs_of_the_same_command_write_identical_files(self):
    # Baselines: their updates raced with the gradients (the learned
    # optimizer's step always waited for all of them; see
    # test_a_learned_optimizer_run_is_reproducible).
    root = self.make_tempdir()
    data_dir = os.path.join(root, "data")
    test_util.write_fake_mnist(os.path.join(data_dir, "mnist"), num_train=10,
                               num_test=1000)
    written = []
    for attempt in ("a", "b"):
      save_dir = os.path.join(root, attempt)
      result = run_program("metatest.py", [
          "--save_dir=" + save_dir, "--data_dir=" + data_dir,
          "--include_mnist_mlp_relu_problems", "--test_optimizer=Adam",
          "--compare_with=SGD", "--num_testing_itrs=200", "--seeds=6",
          "--hessian_lanczos_steps=5", "--hessian_trace_probes=2",
          "--noplot"])
      self.assertEqual(result.returncode, 0, result.stderr[-2000:])
      written.append({os.path.relpath(path, save_dir): digest
                      for path, digest in checksums(save_dir).items()})
    # summary.json differs in its command line and timings only.
    for files in written:
      del files["summary.json"], files[".lock"], files["comparison.md"]
    self.assertEqual(sorted(written[0]), [
        "SGD/seed6_eval_loss_record.pickle-mt", "SGD/seed6_metrics-mt.json",
        "seed6_eval_loss_record.pickle-mt", "seed6_metrics-mt.json"])
    self.assertEqual([name for name in sorted(written[0])
                      if written[0][name] != written[1][name]], [])


class EvaluationRunTest(test_util.TestCase):

  def test_leftovers_of_a_killed_run_are_removed(self):
    save_dir = self.make_tempdir()
    names = (".seed1_eval_loss_record.pickle-mt.tmp-4242",
             "summary.json.tmp-4242", "notes.txt")
    for name in names:
      with open(os.path.join(save_dir, name), "w") as f:
        f.write("x")
    values, explicit = metatest.parse_flags([
        "metatest.py", "--save_dir=" + save_dir, "--test_optimizer=SGD",
        "--include_lasso_problems", "--num_testing_itrs=5", "--seeds=1",
        "--nohessian_metrics", "--noplot"])
    out = io.StringIO()
    metatest.run(values, explicit, out=out)
    self.assertEqual(test_util.file_tree(save_dir),
                     [".lock", "notes.txt", "seed1_eval_loss_record.pickle-mt",
                      "summary.json"])
    self.assertIn("removed 2 temporary files of an interrupted run: %s, %s" %
                  tuple(os.path.join(save_dir, n) for n in names[:2]),
                  out.getvalue())
    # The lock is released: a new open file description can take it.
    with open(os.path.join(save_dir, lock.LOCK_FILE)) as f:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)

  def test_summary_json_is_written_once_at_the_end(self):
    save_dir = self.make_tempdir()
    writes = []
    original = atomic.write_bytes

    def write_bytes(path, data):
      writes.append(os.path.relpath(path, save_dir))
      original(path, data)

    values, explicit = metatest.parse_flags([
        "metatest.py", "--save_dir=" + save_dir, "--test_optimizer=SGD",
        "--compare_with=Adam", "--include_lasso_problems",
        "--num_testing_itrs=5", "--seeds=1,2", "--nohessian_metrics",
        "--noplot"])
    with mock.patch.object(atomic, "write_bytes", write_bytes):
      metatest.run(values, explicit, out=io.StringIO())
    self.assertEqual(writes, [
        "seed1_eval_loss_record.pickle-mt", "seed2_eval_loss_record.pickle-mt",
        "Adam/seed1_eval_loss_record.pickle-mt",
        "Adam/seed2_eval_loss_record.pickle-mt", "summary.json",
        "comparison.md"])

  def test_comparison_writes_the_documented_files(self):
    train_dir = self.make_tempdir()
    path = save_initial_optimizer(
        os.path.join(train_dir, "HierarchicalRNN_GRUCell_20_2"))
    save_dir = os.path.join(train_dir, "eval")
    data_dir = test_util.make_fake_data_dir(self.make_tempdir())
    values, explicit = metatest.parse_flags([
        "metatest.py", "--train_dir=" + train_dir, "--save_dir=" + save_dir,
        "--include_mnist_mlp_relu_problems", "--model_name=mnist-relu",
        "--restore_model_name=model.ckpt-0", "--num_testing_itrs=12",
        "--seeds=6,12", "--compare_with=Adam,SGD", "--data_dir=" + data_dir,
        "--log_every=5"])
    out = io.StringIO()
    summary_path = metatest.run(values, explicit, out=out)
    names = ["seed%d_eval_loss_record.pickle-mnist-relu" % s for s in (6, 12)]
    names += ["seed%d_metrics-mnist-relu.json" % s for s in (6, 12)]
    expected = set(names + ["Adam/" + n for n in names] +
                   ["SGD/" + n for n in names] + ["Adam/", "SGD/",
                                                  "summary.json",
                                                  "comparison.md", ".lock"])
    from evaluation import plot  # pylint: disable=g-import-not-at-top
    if plot.available():
      expected.add("loss_curves-mnist-relu.png")
    self.assertEqual(set(test_util.file_tree(save_dir)), expected)
    with open(os.path.join(save_dir, names[0]), "rb") as f:
      record = pickle.load(f)
    self.assertLen(record, 12)
    self.assertIsInstance(record[0], np.float32)
    with open(summary_path) as f:
      document = json.load(f)
    self.assertEqual(document["seeds"], [6, 12])
    self.assertEqual(document["loss_at_steps"], [1, 10, 12])
    self.assertEqual([r["optimizer"] for r in document["results"]],
                     ["L2o", "Adam", "SGD"])
    self.assertEqual(document["results"][0]["checkpoint"], path)
    self.assertEqual(document["results"][1]["learning_rate"], 1e-4)
    first_losses = {}
    for result in document["results"]:
      self.assertEqual(result["problem"], "mnist_mlp_relu")
      self.assertEqual([s["seed"] for s in result["per_seed"]], [6, 12])
      for entry in result["per_seed"]:
        self.assertEqual(entry["num_steps"], 12)
        first_losses.setdefault(entry["seed"], []).append(
            entry["loss_at"]["1"])
      self.assertIn("mean", result["aggregate"]["final_loss"])
    # Same initial parameters and batches for every optimizer of a seed.
    for losses in first_losses.values():
      self.assertAllClose(losses, [losses[0]] * 3, rtol=1e-6)
    text = out.getvalue()
    self.assertIn("[1/6] testing mnist_mlp_relu with L2o using seed 6", text)
    self.assertIn("step 10/12", text)
    self.assertRegex(text, r"\| mnist_mlp_relu +\| Adam ")

  def test_a_tuned_comparison_on_a_held_out_set_writes_every_grid_point(self):
    train_dir = self.make_tempdir()
    save_initial_optimizer(os.path.join(train_dir,
                                        "HierarchicalRNN_GRUCell_20_2"))
    save_dir = os.path.join(train_dir, "eval")
    data_dir = self.make_tempdir()
    test_util.write_fake_mnist(os.path.join(data_dir, "mnist"),
                               num_train=5300, num_test=80)
    values, explicit = metatest.parse_flags([
        "metatest.py", "--train_dir=" + train_dir, "--save_dir=" + save_dir,
        "--include_mnist_mlp_relu_heldout_problems", "--model_name=h",
        "--num_testing_itrs=20", "--seeds=6,12", "--compare_with=Adam",
        "--adam_learning_rate=1e-3,1e-1", "--metrics_every=5",
        "--metrics_subset=100", "--hessian_lanczos_steps=4",
        "--hessian_trace_probes=2", "--hessian_spectrum",
        "--data_dir=" + data_dir])
    out = io.StringIO()
    summary_path = metatest.run(values, explicit, out=out)
    document = summary.read_summary(save_dir)
    self.assertEqual(summary_path, os.path.join(save_dir, "summary.json"))
    # Two points each: the learned optimizer gets a default grid of the
    # baselines' size, its original range first.
    self.assertEqual(document["grids"], {"L2o": ["1e-06:0.01", "0.001"],
                                         "Adam": ["0.001", "0.1"]})
    self.assertEqual([(r["optimizer"], r["grid_point"])
                      for r in document["results"]],
                     [("L2o", "1e-06:0.01"), ("L2o", "0.001"),
                      ("Adam", "0.001"), ("Adam", "0.1")])
    for selection in document["selection"]:
      self.assertEqual(selection["rule"], tuning.RULE_VALIDATION)
      results = [r for r in document["results"]
                 if r["optimizer"] == selection["optimizer"]]
      # The chosen point has the lowest mean validation loss of the files.
      means = [np.mean([s["heldout"]["validation_loss"]
                        for s in r["per_seed"]]) for r in results]
      self.assertAllClose(selection["scores"], means)
      self.assertEqual([r["chosen"] for r in results],
                       [i == int(np.argmin(means)) for i in range(2)])
      self.assertEqual(selection["chosen"],
                       results[int(np.argmin(means))]["grid_point"])
    for result in document["results"]:
      history = result["history"]
      self.assertEqual(history["steps"], [0, 5, 10, 15, 20])
      for entry in result["per_seed"]:
        self.assertEqual(entry["curvature"]["lanczos_steps"], 4)
        self.assertAllInRange(entry["heldout"]["test_accuracy"], 0., 1.)
        with open(os.path.join(save_dir, entry["metrics_file"])) as f:
          measured = json.load(f)
        self.assertEqual(measured["steps"], [0, 5, 10, 15, 20])
        self.assertEqual(measured["subset"], 100)
        self.assertEqual(measured["final"], entry["heldout"])
        self.assertLen(measured["curvature"]["ritz_values"], 4)
        self.assertAllClose(measured["test_loss"][-1],
                            entry["heldout"]["test_loss"], rtol=1e-5)
        self.assertAllInRange(measured["test_loss"],
                              min(history["test_loss"]["min"]) - 1e-9,
                              max(history["test_loss"]["max"]) + 1e-9)
    files = set(test_util.file_tree(save_dir))
    for name in ("seed6_eval_loss_record.pickle-h-lr0.001",
                 "seed12_metrics-h-lr1e-06_0.01.json",
                 "Adam/seed6_eval_loss_record.pickle-h-lr0.1",
                 "Adam/seed12_metrics-h-lr0.001.json", "comparison.md"):
      self.assertIn(name, files)
    from evaluation import plot  # pylint: disable=g-import-not-at-top
    if plot.available():
      for name in ("loss_curves-h.png", "heldout_curves-h.png",
                   "hessian_spectrum-h.png"):
        self.assertIn(name, files)
    with open(os.path.join(save_dir, "comparison.md")) as f:
      comparison = f.read()
    self.assertIn("Tuned against tuned: every optimizer was evaluated on a "
                  "grid of 2 points", comparison)
    self.assertRegex(comparison, r"\| L2o +\| initial lr ")
    self.assertRegex(comparison, r"\| Adam +\| lr ")
    text = out.getvalue()
    self.assertIn("[8/8] testing mnist_mlp_relu_heldout with Adam "
                  "(learning rate 0.1) using seed 12", text)
    self.assertIn("comparison: " + os.path.join(save_dir, "comparison.md"),
                  text)
    self.assertIn("mnist_mlp_relu_heldout: measuring loss and accuracy on "
                  "train/validation/test every 5 steps (each split on a "
                  "fixed subset of at most 100 samples)", text)

  def test_a_diverged_grid_point_is_reported_and_never_chosen(self):
    # Hessian metrics on (the default): at lr 1e30 SGD's parameters become
    # NaN, and so does their Hessian, whose report crashed the whole grid.
    save_dir = os.path.join(self.make_tempdir(), "div")
    data_dir = self.make_tempdir()
    test_util.write_fake_mnist(os.path.join(data_dir, "mnist"), num_train=10,
                               num_test=200)
    values, explicit = metatest.parse_flags([
        "metatest.py", "--save_dir=" + save_dir, "--data_dir=" + data_dir,
        "--include_mnist_mlp_relu_problems", "--test_optimizer=SGD",
        "--sgd_learning_rate=1e-3,1e30", "--compare_with=Adam",
        "--num_testing_itrs=10", "--seeds=6", "--hessian_lanczos_steps=3",
        "--hessian_trace_probes=2", "--hessian_spectrum"])
    out = io.StringIO()
    metatest.run(values, explicit, out=out)
    document = summary.read_summary(save_dir)
    self.assertEqual(
        [(s["optimizer"], s["diverged"], s["chosen"])
         for s in document["selection"]],
        [("SGD", ["1e+30"], "0.001"), ("Adam", [], "0.0001")])
    diverged = document["results"][1]["per_seed"][0]
    with open(os.path.join(save_dir, diverged["file"]), "rb") as f:
      self.assertFalse(np.all(np.isfinite(pickle.load(f))))
    self.assertFalse(diverged["finite"])
    self.assertIsNone(diverged["curvature"]["top_eigenvalue"])
    self.assertFalse(document["results"][1]["chosen"])
    self.assertTrue(os.path.exists(os.path.join(save_dir, "comparison.md")))
    self.assertIn("top Hessian eigenvalue non-finite, trace non-finite "
                  "(diverged: never chosen)", out.getvalue())

  def test_a_seed_s_line_reports_non_finite_measurements(self):
    # summary.json's entry turns NaN into null; the line said "%.4g" % None.
    nan = float("nan")
    curvature = flatness.Curvature(
        top_eigenvalue=nan, trace=nan, ritz_values=[nan], weights=[nan],
        num_samples=10, lanczos_steps=1, num_probes=1, trace_stderr=None)
    stats = summary.seed_statistics(
        6, [2.3, nan], nan, [1e-3, 1e-3], "f",
        heldout={"validation_loss": nan, "test_loss": 1.5,
                 "test_accuracy": nan}, curvature=curvature)
    out = io.StringIO()
    campaign.report_seed(out, stats, "f")
    self.assertEqual(
        out.getvalue(), "  final loss non-finite (last-100 mean non-finite), "
        "whole-data loss non-finite, validation loss non-finite, test loss "
        "1.5, test accuracy non-finite, top Hessian eigenvalue non-finite, "
        "trace non-finite (diverged: never chosen), 1.00 ms/step -> f\n")

  def test_a_learned_optimizer_run_is_reproducible(self):
    train_dir = self.make_tempdir()
    save_initial_optimizer(os.path.join(train_dir,
                                        "HierarchicalRNN_GRUCell_20_2"))
    records = []
    for attempt in ("a", "b"):
      save_dir = os.path.join(train_dir, attempt)
      values, explicit = metatest.parse_flags([
          "metatest.py", "--train_dir=" + train_dir, "--save_dir=" + save_dir,
          "--include_bowl_problems", "--num_testing_itrs=20", "--seeds=5",
          "--noplot"])
      metatest.run(values, explicit, out=io.StringIO())
      with open(os.path.join(save_dir,
                             "seed5_eval_loss_record.pickle-mt-bowl_0"),
                "rb") as f:
        records.append(pickle.load(f))
    self.assertEqual(records[0], records[1])
    self.assertNotEqual(records[0][0], records[0][-1])

  def test_a_baseline_alone_needs_no_train_dir(self):
    save_dir = os.path.join(self.make_tempdir(), "sgd")
    values, explicit = metatest.parse_flags([
        "metatest.py", "--train_dir=/nonexistent/train_dir",
        "--save_dir=" + save_dir, "--test_optimizer=SGD",
        "--sgd_learning_rate=0.01", "--include_lasso_problems",
        "--num_testing_itrs=5", "--seeds=1", "--noplot"])
    metatest.run(values, explicit, out=io.StringIO())
    self.assertEqual(test_util.file_tree(save_dir),
                     [".lock", "seed1_eval_loss_record.pickle-mt",
                      "seed1_metrics-mt.json", "summary.json"])
    self.assertFalse(os.path.exists("/nonexistent/train_dir"))
    with open(os.path.join(save_dir, "summary.json")) as f:
      document = json.load(f)
    self.assertEqual(document["results"][0]["learning_rate"], 0.01)
    self.assertIsNone(document["results"][0]["checkpoint"])

  def test_checkpoints_of_metarun_evaluate_with_their_recorded_settings(self):
    train_dir = self.make_tempdir()
    result = run_program("metarun.py", [
        "--train_dir=" + train_dir, "--include_lasso_problems",
        "--num_gradient_scales=3", "--fix_unroll=True",
        "--fix_unroll_length=5", "--fix_num_steps=10",
        "--fix_num_steps_eval=10", "--num_meta_iterations=2",
        "--evaluation_epochs=1", "--seed=1"])
    self.assertEqual(result.returncode, 0, result.stderr[-2000:])
    self.assertIn("evaluate with: python metatest.py", result.stdout)
    save_dir = os.path.join(train_dir, "eval")
    result = run_program("metatest.py", [
        "--train_dir=" + train_dir, "--save_dir=" + save_dir,
        "--include_lasso_problems", "--restore_model_name=model.ckpt-0",
        "--num_testing_itrs=15", "--seeds=3", "--noplot"])
    self.assertEqual(result.returncode, 0, result.stderr[-2000:])
    self.assertIn("using the optimizer settings recorded in", result.stdout)
    self.assertIn("num_gradient_scales=3", result.stdout)
    with open(os.path.join(save_dir, "summary.json")) as f:
      document = json.load(f)
    entry = document["results"][0]["per_seed"][0]
    self.assertEqual(entry["num_steps"], 15)
    self.assertTrue(entry["finite"])
    self.assertTrue(os.path.exists(os.path.join(
        save_dir, "seed3_eval_loss_record.pickle-mt")))
    # Flags that contradict the recorded settings would evaluate another
    # optimizer (or fail on its shapes): the file wins, and a line says so.
    save_dir = os.path.join(train_dir, "eval2")
    values, explicit = metatest.parse_flags([
        "metatest.py", "--train_dir=" + train_dir, "--save_dir=" + save_dir,
        "--include_lasso_problems", "--restore_model_name=model.ckpt-0",
        "--num_testing_itrs=5", "--seeds=3", "--noplot", "--max_lr=0.1",
        "--num_gradient_scales=4", "--use_attention=False"])
    out = io.StringIO()
    metatest.run(values, explicit, out=out)
    recorded = os.path.join(train_dir, "HierarchicalRNN_GRUCell_20_2",
                            "optimizer.json")
    self.assertIn("warning: --max_lr=0.1, --num_gradient_scales=4 contradict "
                  "%s, which records the settings the checkpoints were "
                  "trained with; using max_lr=0.01, num_gradient_scales=3 "
                  "(--init_lr_grid evaluates other initial learning rates)\n"
                  % recorded, out.getvalue())
    document = summary.read_summary(save_dir)
    self.assertEqual(document["results"][0]["initial_learning_rates"],
                     [1e-6, 1e-2])


if __name__ == "__main__":
  tf.test.main()
