"""Tests of cluster.py: the cluster flags, the placement rule, the waits."""

from tests import test_util

import io
import socket

import tensorflow.compat.v1 as tf

from meta_training import cluster
from meta_training import config as config_lib
from meta_training import graph as graph_lib
from optimizer import hierarchical_rnn
from problems import problem_generator as pg
from problems import problem_spec

PS = "127.0.0.1:2222,127.0.0.1:2223"
WORKERS = "127.0.0.1:2224,127.0.0.1:2225"


def _values(**overrides):
  values = dict(job_name="worker", task=0, ps_hosts=PS, worker_hosts=WORKERS,
                ps_tasks=2, worker_tasks=2, cluster_wait_secs=60,
                if_cl=False)
  values.update(overrides)
  return values


def _single(**overrides):
  return _values(**dict(dict(job_name=None, ps_hosts="", worker_hosts="",
                             ps_tasks=0, worker_tasks=1), **overrides))


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class ConfigFromFlagsTest(tf.test.TestCase):

  def _error(self, values):
    with self.assertRaises(cluster.ClusterFlagError) as context:
      cluster.config_from_flags(values)
    message = str(context.exception)
    self.assertNotIn("\n", message)
    return message

  def test_no_cluster_flags_mean_one_process(self):
    self.assertIsNone(cluster.config_from_flags(_single()))
    # The original's single-process runs with several worker tasks stay.
    self.assertIsNone(cluster.config_from_flags(_single(worker_tasks=3,
                                                        task=2)))

  def test_a_consistent_cluster_is_described(self):
    config = cluster.config_from_flags(_values(task=1))
    self.assertEqual(config.ps_hosts, ["127.0.0.1:2222", "127.0.0.1:2223"])
    self.assertEqual(config.worker_hosts, ["127.0.0.1:2224",
                                           "127.0.0.1:2225"])
    self.assertEqual(config.device, "/job:worker/task:1")
    self.assertFalse(config.is_chief)
    self.assertTrue(cluster.config_from_flags(_values()).is_chief)
    ps = cluster.config_from_flags(_values(job_name="ps", task=1))
    self.assertFalse(ps.is_chief)
    self.assertEqual(ps.cluster_spec().as_dict(),
                     {"ps": ["127.0.0.1:2222", "127.0.0.1:2223"],
                      "worker": ["127.0.0.1:2224", "127.0.0.1:2225"]})

  def test_parameter_servers_without_a_cluster_are_rejected(self):
    self.assertIn("--ps_tasks=2: parameter servers need a cluster",
                  self._error(_single(ps_tasks=2)))
    self.assertIn("--ps_tasks=-1", self._error(_single(ps_tasks=-1)))

  def test_half_a_cluster_is_rejected(self):
    self.assertIn("--job_name: required",
                  self._error(_values(job_name=None)))
    self.assertIn("--job_name=chief: expected ps or worker",
                  self._error(_values(job_name="chief")))
    self.assertIn("--ps_hosts: required", self._error(_values(ps_hosts="")))
    self.assertIn("--worker_hosts: required",
                  self._error(_values(worker_hosts=" ")))
    self.assertIn("--ps_hosts: required",
                  self._error(_single(job_name="worker")))

  def test_counts_must_match_the_host_lists(self):
    self.assertIn("--worker_tasks=1 does not match --worker_hosts (2 hosts); "
                  "use --worker_tasks=2",
                  self._error(_values(worker_tasks=1)))
    self.assertIn("--ps_tasks=0 does not match --ps_hosts (2 hosts)",
                  self._error(_values(ps_tasks=0)))

  def test_task_must_exist_in_its_job(self):
    self.assertIn("--task=2: --worker_hosts lists 2 hosts",
                  self._error(_values(task=2)))
    self.assertIn("--task=2: --ps_hosts lists 2 hosts",
                  self._error(_values(job_name="ps", task=2)))

  def test_bad_host_lists_name_their_flag(self):
    self.assertIn("--ps_hosts=localhost: 'localhost' is not host:port",
                  self._error(_values(ps_hosts="localhost", ps_tasks=1)))
    self.assertIn("'h:99999' is not host:port",
                  self._error(_values(worker_hosts="h:1,h:99999")))
    self.assertIn("':80' is not host:port",
                  self._error(_values(worker_hosts=":80,h:2")))
    self.assertIn("--worker_hosts: 127.0.0.1:2222 is listed twice",
                  self._error(_values(worker_hosts="127.0.0.1:2222,h:1")))

  def test_other_settings_are_checked(self):
    self.assertIn("--cluster_wait_secs=0",
                  self._error(_values(cluster_wait_secs=0)))
    self.assertIn("--if_cl", self._error(_values(if_cl=True)))

  def test_each_worker_draws_with_its_own_seed(self):
    self.assertEqual(cluster.task_seed(5, 0), 5)
    self.assertNotEqual(cluster.task_seed(5, 1), 5)
    self.assertNotEqual(cluster.task_seed(5, 1), cluster.task_seed(5, 2))
    self.assertIsNone(cluster.task_seed(None, 1))


class PlacementTest(tf.test.TestCase):

  def test_meta_parameters_go_to_the_ps_and_unroll_state_stays(self):
    config = cluster.config_from_flags(_values(task=1))
    problem = problem_spec.Spec(pg.Quadratic, (3,), {"random_seed": 0})
    optimizer = problem_spec.Spec(hierarchical_rnn.HierarchicalRNN,
                                  ([4, 5, 5],), {})
    with tf.Graph().as_default(), cluster.placement(config):
      graph = graph_lib.build_meta_graph(
          problem, optimizer, config_lib.MetaOptimizer(1e-3, 0.9, 1e-10, 1e4,
                                                       0.))
      global_devices = {v.op.name: v.device for v in tf.global_variables()}
      local_devices = {v.op.name: v.device for v in tf.local_variables()}
      unroll_device = graph.train_output.meta_objective.device
    self.assertIn("global_step", global_devices)
    self.assertIn("meta_training/meta_iterations_done", global_devices)
    self.assertTrue(any(n.startswith("LOL/") and n.endswith("RMSProp")
                        for n in global_devices))
    for name, device in global_devices.items():
      self.assertRegex(device, r"^/job:ps/task:[01]", name)
    # Round-robin over both parameter servers.
    self.assertLen({d[:len("/job:ps/task:0")]
                    for d in global_devices.values()}, 2)
    self.assertTrue(any(n.startswith("LOL/local_state_")
                        for n in local_devices))
    for name, device in local_devices.items():
      self.assertTrue(device.startswith("/job:worker/task:1"), (name, device))
    # The unroll itself runs on the worker.
    self.assertTrue(unroll_device.startswith("/job:worker/task:1"))

  def test_outside_the_scope_nothing_is_placed(self):
    with tf.Graph().as_default():
      self.assertEqual(tf.get_variable("x", [1]).device, "")


class WaitTest(tf.test.TestCase):

  def test_a_missing_parameter_server_is_waited_for_then_reported(self):
    ps_port, worker_port = _free_port(), _free_port()
    config = cluster.ClusterConfig(
        "worker", 0, ["127.0.0.1:%d" % ps_port],
        ["127.0.0.1:%d" % worker_port], 1.5)
    out = io.StringIO()
    worker = cluster.Worker(config, out)
    with self.assertRaisesRegex(
        cluster.ClusterError,
        r"^no parameter server answered at 127\.0\.0\.1:%d within 1\.5 s "
        r"\(--cluster_wait_secs\)" % ps_port):
      worker.wait_for_parameter_servers()
    self.assertIn("waiting for parameter server at 127.0.0.1:%d ..." % ps_port,
                  out.getvalue())

  def test_a_taken_port_is_a_one_line_error(self):
    with socket.socket() as taken:
      taken.bind(("127.0.0.1", 0))
      taken.listen(1)
      port = taken.getsockname()[1]
      config = cluster.ClusterConfig(
          "ps", 0, ["127.0.0.1:%d" % port], ["127.0.0.1:%d" % _free_port()],
          1)
      with self.assertRaisesRegex(cluster.ClusterError,
                                  "cannot start the ps task 0 server on "
                                  "127.0.0.1:%d" % port):
        cluster.start_server(config)


if __name__ == "__main__":
  tf.test.main()
