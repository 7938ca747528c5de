"""Loopback test of distributed meta-training: 1 parameter server, 2 workers.

Every process is `python metarun.py` on 127.0.0.1 with free ports. The
workers start first, so the chief has to wait for the parameter server (and
say so); then the parameter server starts. Each meta-iteration is one unroll,
so one meta-update: the shared global step must end at the sum of both
workers' meta-iterations.
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
# Seconds the whole cluster may take; every process is killed after that.
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

  def test_two_workers_update_the_shared_meta_parameters_and_exit(self):
    start = time.time()
    deadline = start + _TIMEOUT
    ps, chief, worker = ("127.0.0.1:%d" % p for p in _free_ports(3))
    cluster_flags = ["--ps_hosts=" + ps, "--worker_hosts=%s,%s" % (chief,
                                                                   worker),
                     "--ps_tasks=1", "--worker_tasks=2",
                     "--cluster_wait_secs=%d" % _TIMEOUT]
    training_flags = ["--include_quadratic_problems", "--fix_unroll=True",
                      "--fix_unroll_length=5", "--fix_num_steps=5",
                      "--fix_num_steps_eval=5", "--evaluation_epochs=1",
                      "--seed=1"]
    chief_dir = os.path.join(self._folder, "chief")
    worker_dir = os.path.join(self._folder, "worker")
    self._start("chief", cluster_flags + training_flags + [
        "--job_name=worker", "--task=0", "--train_dir=" + chief_dir,
        "--num_meta_iterations=2"])
    self._start("worker", cluster_flags + training_flags + [
        "--job_name=worker", "--task=1", "--train_dir=" + worker_dir,
        "--num_meta_iterations=3"])
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
    self.assertIn("meta-iteration 2/2", outputs["chief"])
    self.assertIn("chief: worker 1 has finished", outputs["chief"])
    self.assertIn("meta-iteration 3/3", outputs["worker"])
    self.assertNotIn("evaluation 1", outputs["worker"])
    self.assertIn("parameter server 0: the chief has finished; exiting",
                  outputs["ps"])

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
    self.assertIn("recorded the starting meta-parameters", outputs["chief"])
    # Only the chief writes files.
    self.assertFalse(os.path.exists(worker_dir))


if __name__ == "__main__":
  tf.test.main()
