"""Loopback tests of distributed meta-training: 1 parameter server, 2 workers.

Every process is `python metarun.py` on 127.0.0.1 with free ports. The
workers start first, so the chief has to wait for the parameter server (and
say so); then the parameter server starts. A meta-iteration is
--fix_num_steps / --fix_unroll_length unrolls of one meta-update each, so the
shared global step must end at the sum of both workers' meta-updates.

One cluster runs truncated backprop (the original's estimator, RMSProp).
The other runs the forward-only estimators with Adam: the chief
`--gradient_estimator=es`, the other worker `--gradient_estimator=pes` (each
worker picks its own estimator) on two unrolls per meta-iteration, so its
particle pairs carry their states from one unroll to the next. Each worker
draws its own perturbations, keeps its own PES particles and applies its
estimates asynchronously to the meta-parameters on the parameter server, as
truncated backprop does.
"""

from tests import test_util

import os
import socket
import subprocess
import sys
import time

import numpy as np
import tensorflow.compat.v1 as tf

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Seconds a whole cluster may take; every process is killed after that.
_TIMEOUT = 400
_LOGDIR_NAME = "HierarchicalRNN_GRUCell_20_2"


def _free_ports(count):
  """`count` distinct free ports on 127.0.0.1."""
  sockets = []
  try:
    for _ in range(count):
      s = socket.socket()
      s.bind(("127.0.0.1", 0))
      sockets.append(s)
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def _training_flags(num_steps=5):
  """A worker's meta-training flags: meta-iterations of num_steps // 5
  unrolls of 5 steps on the quadratic problems."""
  return ["--include_quadratic_problems", "--fix_unroll=True",
          "--fix_unroll_length=5", "--fix_num_steps=%d" % num_steps,
          "--fix_num_steps_eval=5", "--evaluation_epochs=1", "--seed=1"]


def _is_slot(name, optimizer):
  """Whether checkpoint variable `name` is a slot of `optimizer` ("RMSProp"
  or "Adam"), whose slots are named <variable>/<optimizer>[_1]."""
  return name.endswith(("/" + optimizer, "/%s_1" % optimizer))


class LoopbackClusterTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self._processes = {}
    self._logs = {}
    self._folder = self.get_temp_dir()

  def tearDown(self):
    for process in self._processes.values():
      if process.poll() is None:
        process.kill()
        process.wait()
    for log in self._logs.values():
      log.close()
    super().tearDown()

  def _start(self, name, args):
    log = open(os.path.join(self._folder, name + ".log"), "w")
    self._logs[name] = log
    self._processes[name] = subprocess.Popen(
        [sys.executable, "metarun.py"] + args, cwd=_ROOT, stdout=log,
        stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=_ROOT))

  def _output(self, name):
    self._logs[name].flush()
    with open(os.path.join(self._folder, name + ".log")) as f:
      return f.read()

  def _report(self):
    """Exit status and the end of the output of every process."""
    return "\n".join(
        "--- %s (exit status %s):\n%s" % (name, process.poll(),
                                          self._output(name)[-2000:])
        for name, process in self._processes.items())

  def _wait_for_line(self, name, text, deadline):
    """Waits until process `name` printed `text` (or exited, or timed out)."""
    while time.time() < deadline and self._processes[name].poll() is None:
      if text in self._output(name):
        return
      time.sleep(0.2)

  def _run_cluster(self, chief_flags, worker_flags):
    """Runs a parameter server, the chief and worker 1 to their end.

    The two workers start first; the parameter server once the chief says
    it waits for it. Fails the test unless every process exits with status
    0 within _TIMEOUT seconds, and checks the lines of the start and the end
    that every run prints.

    Args:
      chief_flags: the chief's meta-training flags (no cluster flags, no
        --train_dir).
      worker_flags: those of worker 1.

    Returns:
      (chief_dir, worker_dir, outputs): the two workers' --train_dir and a
      dict process name ("ps", "chief", "worker") -> its whole output.
    """
    start = time.time()
    deadline = start + _TIMEOUT
    ps, chief, worker = ("127.0.0.1:%d" % p for p in _free_ports(3))
    cluster_flags = ["--ps_hosts=" + ps, "--worker_hosts=%s,%s" % (chief,
                                                                   worker),
                     "--ps_tasks=1", "--worker_tasks=2",
                     "--cluster_wait_secs=%d" % _TIMEOUT]
    chief_dir = os.path.join(self._folder, "chief")
    worker_dir = os.path.join(self._folder, "worker")
    self._start("chief", cluster_flags + chief_flags + [
        "--job_name=worker", "--task=0", "--train_dir=" + chief_dir])
    self._start("worker", cluster_flags + worker_flags + [
        "--job_name=worker", "--task=1", "--train_dir=" + worker_dir])
    self._wait_for_line("chief", "waiting for parameter server", deadline)
    self._start("ps", cluster_flags + ["--job_name=ps", "--task=0"])
    for name, process in self._processes.items():
      try:
        process.wait(timeout=max(deadline - time.time(), 1))
      except subprocess.TimeoutExpired:
        self.fail("%s still running after %d s; every process:\n%s" %
                  (name, _TIMEOUT, self._report()))
    print("loopback cluster took %.1f s" % (time.time() - start))
    outputs = {name: self._output(name) for name in self._processes}
    for name, process in self._processes.items():
      self.assertEqual(process.returncode, 0, "%s:\n%s" %
                       (name, outputs[name][-3000:]))
    self.assertIn("waiting for parameter server at %s ..." % ps,
                  outputs["chief"])
    self.assertIn("chief: worker 1 has finished", outputs["chief"])
    self.assertNotIn("evaluation 1", outputs["worker"])
    self.assertIn("parameter server 0: the chief has finished; exiting",
                  outputs["ps"])
    self.assertIn("recorded the starting meta-parameters", outputs["chief"])
    # Only the chief writes files.
    self.assertFalse(os.path.exists(worker_dir))
    return chief_dir, worker_dir, outputs

  def test_two_workers_update_the_shared_meta_parameters_and_exit(self):
    chief_dir, _, outputs = self._run_cluster(
        _training_flags() + ["--num_meta_iterations=2"],
        _training_flags() + ["--num_meta_iterations=3"])
    self.assertIn("meta-iteration 2/2", outputs["chief"])
    self.assertIn("meta-iteration 3/3", outputs["worker"])

    logdir = os.path.join(chief_dir, _LOGDIR_NAME)
    path = tf.train.latest_checkpoint(logdir)
    self.assertEqual(path, os.path.join(logdir, "model.ckpt-2"))
    stored = dict(tf.train.list_variables(path))
    # 2 + 3 meta-iterations of one meta-update each, on one shared counter.
    self.assertEqual(tf.train.load_variable(path, "global_step"), 5)
    self.assertEqual(
        tf.train.load_variable(path, "meta_training/meta_iterations_done"), 2)
    meta_parameters = [n for n in stored if n.startswith("LOL/")]
    self.assertTrue(any(n.endswith("/RMSProp") for n in meta_parameters))
    self.assertTrue(any(not n.endswith(("/RMSProp", "/RMSProp_1"))
                        for n in meta_parameters))
    self.assertFalse(any(n.startswith("LOL/local_state_") for n in stored))
    # The chief recorded the start before any worker's meta-update.
    start = os.path.join(logdir, "model.ckpt-initial")
    self.assertEqual(tf.train.load_variable(start, "global_step"), 0)
    for name in meta_parameters:
      if name.endswith("/RMSProp"):
        self.assertAllEqual(tf.train.load_variable(start, name),
                            np.ones(stored[name]))

  def test_es_and_pes_workers_update_the_shared_meta_parameters(self):
    estimator_flags = ["--es_pairs=2", "--meta_optimizer=adam",
                       "--meta_learning_rate=1e-4"]
    chief_dir, _, outputs = self._run_cluster(
        _training_flags() + estimator_flags + [
            "--gradient_estimator=es", "--num_meta_iterations=2"],
        _training_flags(num_steps=10) + estimator_flags + [
            "--gradient_estimator=pes", "--num_meta_iterations=3"])
    self.assertIn("meta-iteration 2/2", outputs["chief"])
    self.assertIn("meta-iteration 3/3", outputs["worker"])

    logdir = os.path.join(chief_dir, _LOGDIR_NAME)
    path = tf.train.latest_checkpoint(logdir)
    self.assertEqual(path, os.path.join(logdir, "model.ckpt-2"))
    # The chief's 2 meta-iterations of one ES update and worker 1's 3 of two
    # PES updates, on one shared counter.
    self.assertEqual(tf.train.load_variable(path, "global_step"), 2 + 3 * 2)
    stored = dict(tf.train.list_variables(path))
    meta_parameters = [n for n in stored if n.startswith("LOL/")
                       and not _is_slot(n, "Adam")]
    self.assertNotEmpty(meta_parameters)
    for name in meta_parameters:
      self.assertIn(name + "/Adam", stored)
      self.assertIn(name + "/Adam_1", stored)
    self.assertIn("beta1_power", stored)
    self.assertFalse(any(_is_slot(n, "RMSProp") for n in stored))
    # Every trained meta-parameter moved from the recorded start: an ES
    # estimate has no zero entry, and Adam moves every entry it is given.
    # Not every entry need differ at the end: an entry whose steps (about
    # +/- the learning rate each, their signs random and their order set by
    # the asynchronous workers) sum to less than half a float32 spacing ends
    # where it began: rare, but among the HierarchicalRNN's 8,000-odd entries
    # it happened once (a gate bias at 2.2, float32 spacing 2.4e-7).
    start = os.path.join(logdir, "model.ckpt-initial")
    self.assertEqual(tf.train.load_variable(start, "global_step"), 0)
    unchanged = total = 0
    for name in meta_parameters:
      before = tf.train.load_variable(start, name)
      after = tf.train.load_variable(path, name)
      self.assertTrue(np.all(np.isfinite(after)), name)
      self.assertTrue(np.any(before != after),
                      "the meta-updates left %s unchanged" % name)
      unchanged += int(np.sum(before == after))
      total += before.size
    self.assertLess(unchanged, 0.01 * total)


if __name__ == "__main__":
  tf.test.main()
