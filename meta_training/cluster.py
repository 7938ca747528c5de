"""Distributed meta-training on TensorFlow's own runtime (compat.v1 servers).

A cluster has parameter servers (job "ps") and workers (job "worker"), each
one process started with `metarun.py --job_name=... --task=...` and the same
`--ps_hosts`/`--worker_hosts` lists. The parameter servers hold every global
variable: the meta-parameters under "LOL", their RMSProp slots, global_step
and the progress counters. Each worker meta-trains on its own problem draws,
keeps its unroll state (the LOCAL_VARIABLES) on itself, and updates the
shared meta-parameters asynchronously. Worker 0 is the chief: it initialises
or restores the meta-parameters and is the only one to write checkpoints and
summaries.

The end of a run is a handshake over FIFO queues that live on the parameter
servers and are shared by name between the processes' sessions:

  * a worker other than the chief, when done, enqueues its task id on
    "l2o_workers_done" (on ps task 0) and exits;
  * the chief, when done, dequeues until every other worker has reported,
    saves its final checkpoint (so it holds every worker's updates), then
    enqueues one token on "l2o_ps_shutdown_<i>" for each ps task i and exits;
  * parameter server i waits for its token and exits.

This module holds the cluster description (`ClusterConfig`, parsed from the
flags by `config_from_flags`), the placement rule (`placement`), the worker's
side of the protocol (`Worker`) and the parameter server's main loop
(`run_parameter_server`).
"""

import collections
import contextlib
import socket
import sys
import time

import tensorflow.compat.v1 as tf

PS_JOB = "ps"
WORKER_JOB = "worker"
_DONE_QUEUE = "l2o_workers_done"
_SHUTDOWN_QUEUE = "l2o_ps_shutdown_%d"
# How often a blocked wait wakes up (to print, to notice Ctrl-C, to time out).
_POLL_SECS = 1.0
# A wait that lasts prints a "still waiting" line this often.
_REPEAT_MESSAGE_SECS = 30.0


class ClusterFlagError(ValueError):
  """Cluster flags that cannot describe a cluster (one line, names a flag)."""


class ClusterError(RuntimeError):
  """A cluster that does not come together at run time (one line)."""


class ClusterConfig(collections.namedtuple(
    "ClusterConfig", "job_name task ps_hosts worker_hosts wait_secs")):
  """This process's place in the cluster.

  Attributes:
    job_name: "ps" or "worker".
    task: index of this process within its job.
    ps_hosts, worker_hosts: lists of "host:port".
    wait_secs: how long a worker waits for the parameter servers to answer,
      and a worker other than the chief for the meta-parameters to be
      initialised, before it gives up.
  """

  @property
  def is_chief(self):
    return self.job_name == WORKER_JOB and self.task == 0

  @property
  def num_workers(self):
    return len(self.worker_hosts)

  @property
  def num_ps(self):
    return len(self.ps_hosts)

  @property
  def device(self):
    """This process's device prefix, e.g. "/job:worker/task:1"."""
    return "/job:%s/task:%d" % (self.job_name, self.task)

  def cluster_spec(self):
    return tf.train.ClusterSpec({PS_JOB: list(self.ps_hosts),
                                 WORKER_JOB: list(self.worker_hosts)})


def parse_hosts(flag, text):
  """The "host:port" entries of a comma-separated flag value.

  Raises:
    ClusterFlagError: naming `flag` for an entry that is not host:port.
  """
  hosts = []
  for entry in (text or "").split(","):
    entry = entry.strip()
    if not entry:
      continue
    host, sep, port = entry.rpartition(":")
    if not sep or not host or not port.isdigit() or not (
        0 < int(port) < 65536):
      raise ClusterFlagError(
          "--%s=%s: %r is not host:port (e.g. localhost:2222)" %
          (flag, text, entry))
    hosts.append(entry)
  return hosts


def config_from_flags(values):
  """The ClusterConfig of the flag values, or None for a single process.

  Without --job_name, --ps_hosts and --worker_hosts the run is one process
  (as the original); --ps_tasks must then stay 0.

  Args:
    values: dict flag name -> value (job_name, ps_hosts, worker_hosts, task,
      ps_tasks, worker_tasks, cluster_wait_secs, if_cl).

  Raises:
    ClusterFlagError: one line naming the inconsistent flag.
  """
  ps_hosts = parse_hosts("ps_hosts", values["ps_hosts"])
  worker_hosts = parse_hosts("worker_hosts", values["worker_hosts"])
  job_name = values["job_name"]
  if values["ps_tasks"] < 0:
    raise ClusterFlagError("--ps_tasks=%d: must not be negative" %
                           values["ps_tasks"])
  if not (job_name or ps_hosts or worker_hosts):
    if values["ps_tasks"]:
      raise ClusterFlagError(
          "--ps_tasks=%d: parameter servers need a cluster; give "
          "--job_name, --ps_hosts and --worker_hosts (docs/distributed.md)"
          % values["ps_tasks"])
    return None
  if not job_name:
    raise ClusterFlagError("--job_name: required with --ps_hosts/"
                           "--worker_hosts; ps or worker")
  if job_name not in (PS_JOB, WORKER_JOB):
    raise ClusterFlagError("--job_name=%s: expected ps or worker" % job_name)
  for flag, hosts in (("ps_hosts", ps_hosts), ("worker_hosts", worker_hosts)):
    if not hosts:
      raise ClusterFlagError("--%s: required with --job_name (comma-separated "
                             "host:port list)" % flag)
  seen = set()
  for flag, hosts in (("ps_hosts", ps_hosts), ("worker_hosts", worker_hosts)):
    for host in hosts:
      if host in seen:
        raise ClusterFlagError("--%s: %s is listed twice in the cluster" %
                               (flag, host))
      seen.add(host)
  for count_flag, hosts_flag, hosts in (
      ("ps_tasks", "ps_hosts", ps_hosts),
      ("worker_tasks", "worker_hosts", worker_hosts)):
    if values[count_flag] != len(hosts):
      raise ClusterFlagError(
          "--%s=%d does not match --%s (%d hosts); use --%s=%d" %
          (count_flag, values[count_flag], hosts_flag, len(hosts), count_flag,
           len(hosts)))
  hosts = ps_hosts if job_name == PS_JOB else worker_hosts
  if not 0 <= values["task"] < len(hosts):
    raise ClusterFlagError(
        "--task=%d: --%s_hosts lists %d hosts, so a %s task is 0..%d" %
        (values["task"], job_name, len(hosts), job_name, len(hosts) - 1))
  if values["cluster_wait_secs"] <= 0:
    raise ClusterFlagError("--cluster_wait_secs=%s: must be positive" %
                           values["cluster_wait_secs"])
  if values["if_cl"]:
    raise ClusterFlagError("--if_cl: curriculum learning runs in a single "
                           "process; drop --job_name, --ps_hosts and "
                           "--worker_hosts")
  return ClusterConfig(job_name, values["task"], ps_hosts, worker_hosts,
                       values["cluster_wait_secs"])


def task_seed(seed, task):
  """The seed of worker `task`: distinct draws per worker, `seed` for 0."""
  return None if seed is None else seed + 7919 * task


@contextlib.contextmanager
def placement(config):
  """Builds ops under the cluster's placement rule.

  Variables go round-robin to the parameter servers, every other op to this
  worker, except local variables (the unroll state, LOCAL_VARIABLES), which
  stay on this worker: the original sent its "LOL/local_state_*" variables
  there, this rule covers every local variable.
  """
  setter = tf.train.replica_device_setter(
      worker_device=config.device, cluster=config.cluster_spec())

  def local_variables_stay(next_creator, **kwargs):
    if tf.GraphKeys.LOCAL_VARIABLES in (kwargs.get("collections") or ()):
      with tf.device(config.device):
        return next_creator(**kwargs)
    return next_creator(**kwargs)

  with tf.device(setter), tf.variable_creator_scope(local_variables_stay):
    yield


def start_server(config):
  """This process's tf.train.Server.

  Raises:
    ClusterError: the server cannot start (e.g. its port is taken).
  """
  hosts = config.ps_hosts if config.job_name == PS_JOB else config.worker_hosts
  try:
    return tf.train.Server(config.cluster_spec(), job_name=config.job_name,
                           task_index=config.task, start=True)
  except (tf.errors.OpError, ValueError) as e:
    raise ClusterError("cannot start the %s task %d server on %s: %s" %
                       (config.job_name, config.task, hosts[config.task],
                        _first_line(e))) from None


def _first_line(error):
  message = getattr(error, "message", None) or str(error)
  return message.strip().splitlines()[0] if message.strip() else repr(error)


def _done_queue(config):
  with tf.device("/job:%s/task:0" % PS_JOB):
    # Room for a second report from every restarted worker.
    return tf.FIFOQueue(4 * config.num_workers, [tf.int32], shapes=[[]],
                        shared_name=_DONE_QUEUE, name="workers_done")


def _shutdown_queue(ps_task):
  with tf.device("/job:%s/task:%d" % (PS_JOB, ps_task)):
    return tf.FIFOQueue(4, [tf.int32], shapes=[[]],
                        shared_name=_SHUTDOWN_QUEUE % ps_task,
                        name="ps_shutdown_%d" % ps_task)


def _dequeue_blocking(sess, queue_ops, on_timeout):
  """Dequeues one element, checking for it every _POLL_SECS.

  A dequeue under a run timeout can take the element and still report the
  timeout, losing it; so the queue's size is polled, and the dequeue runs
  without a timeout once an element is there (each queue has one consumer).
  Each empty poll calls on_timeout(seconds waited) so the caller can print
  or give up; the short sleeps also let Ctrl-C through.

  Args:
    sess: a session of the queue's graph.
    queue_ops: (size op, dequeue op) of the queue.
    on_timeout: function of the seconds waited so far.
  """
  size, dequeue = queue_ops
  start = time.time()
  while sess.run(size) < 1:
    time.sleep(_POLL_SECS)
    on_timeout(time.time() - start)
  return sess.run(dequeue)


def run_parameter_server(config, out=sys.stdout):
  """Serves the meta-parameters until the chief says the run is over."""
  server = start_server(config)
  _write(out, "parameter server %d serving on %s; it exits when the chief "
         "worker has finished (Ctrl-C stops it sooner)" %
         (config.task, config.ps_hosts[config.task]))
  graph = tf.Graph()
  with graph.as_default():
    queue = _shutdown_queue(config.task)
    token = (queue.size(), queue.dequeue())
  graph.finalize()
  session_config = tf.ConfigProto(device_filters=[config.device])
  with tf.Session(server.target, graph=graph, config=session_config) as sess:
    _dequeue_blocking(sess, token, lambda _: None)
  _write(out, "parameter server %d: the chief has finished; exiting" %
         config.task)


def _write(out, message):
  out.write(message + "\n")
  out.flush()


class Worker(object):
  """A worker's side of the cluster: its server, sessions and handshakes."""

  def __init__(self, config, out=sys.stdout):
    self.config = config
    self._out = out
    self._server = start_server(config)
    self._session_config = tf.ConfigProto(
        device_filters=["/job:%s" % PS_JOB, config.device])

  @property
  def is_chief(self):
    return self.config.is_chief

  def placement(self):
    return placement(self.config)

  def session(self, graph):
    """A session on this worker's server (waits for the ps to answer)."""
    self.wait_for_parameter_servers()
    return tf.Session(self._server.target, graph=graph,
                      config=self._session_config)

  def wait_for_parameter_servers(self):
    """Returns once every parameter server accepts connections.

    A session whose parameter server is not up blocks without a word
    (TensorFlow's master waits for it indefinitely), so this checks the
    ports first and says what it is waiting for.

    Raises:
      ClusterError: a parameter server did not answer within wait_secs.
    """
    start = time.time()
    for host in self.config.ps_hosts:
      name, port = host.rsplit(":", 1)
      said = None
      while True:
        try:
          socket.create_connection((name, int(port)), timeout=2).close()
          break
        except OSError:
          waited = time.time() - start
          if waited > self.config.wait_secs:
            raise ClusterError(
                "no parameter server answered at %s within %g s "
                "(--cluster_wait_secs); start it with --job_name=ps" %
                (host, self.config.wait_secs)) from None
          if said is None or waited - said >= _REPEAT_MESSAGE_SECS:
            _write(self._out, "waiting for parameter server at %s ... "
                   "(%.0f s)" % (host, waited))
            said = waited
          time.sleep(_POLL_SECS)

  def wait_for_initialization(self, sess, uninitialized):
    """Waits until the chief has initialised or restored the global state.

    Args:
      sess: a session of this worker.
      uninitialized: the tensor of tf.report_uninitialized_variables over
        the global variables.

    Raises:
      ClusterError: still uninitialised after wait_secs.
    """
    start = time.time()
    said = None
    while True:
      names = sess.run(uninitialized)
      if not len(names):  # pylint: disable=g-explicit-length-test
        return
      waited = time.time() - start
      if waited > self.config.wait_secs:
        raise ClusterError(
            "the chief worker did not initialise the meta-parameters within "
            "%g s (--cluster_wait_secs); is --job_name=worker --task=0 "
            "running?" % self.config.wait_secs)
      if said is None or waited - said >= _REPEAT_MESSAGE_SECS:
        _write(self._out, "waiting for the chief worker to initialise the "
               "meta-parameters (%d variables left, %.0f s)" %
               (len(names), waited))
        said = waited
      time.sleep(_POLL_SECS)

  def _small_session(self, build):
    graph = tf.Graph()
    with graph.as_default():
      fetch = build()
    graph.finalize()
    return self.session(graph), fetch

  def report_done(self):
    """A worker other than the chief tells the chief it has finished."""
    sess, enqueue = self._small_session(
        lambda: _done_queue(self.config).enqueue([self.config.task]))
    with sess:
      sess.run(enqueue)
    _write(self._out, "worker %d: told the chief it has finished" %
           self.config.task)

  def wait_for_other_workers(self):
    """The chief waits until every other worker has reported done."""
    others = set(range(1, self.config.num_workers))
    if not others:
      return
    def build():
      queue = _done_queue(self.config)
      return queue.size(), queue.dequeue()
    sess, dequeue = self._small_session(build)
    said = [0.]

    def still_waiting(waited):
      if waited - said[0] >= _REPEAT_MESSAGE_SECS:
        _write(self._out, "still waiting for worker(s) %s (%.0f s)" %
               (", ".join(str(t) for t in sorted(others)), waited))
        said[0] = waited

    _write(self._out, "chief: waiting for worker(s) %s to finish" %
           ", ".join(str(t) for t in sorted(others)))
    with sess:
      while others:
        task = int(_dequeue_blocking(sess, dequeue, still_waiting))
        others.discard(task)
        _write(self._out, "chief: worker %d has finished" % task)

  def release_parameter_servers(self):
    """The chief tells every parameter server to exit."""
    def build():
      return [_shutdown_queue(i).enqueue([0])
              for i in range(self.config.num_ps)]
    sess, enqueues = self._small_session(build)
    with sess:
      sess.run(enqueues)
    _write(self._out, "chief: told %d parameter server(s) to exit" %
           self.config.num_ps)
