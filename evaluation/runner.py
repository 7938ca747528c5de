"""`test_optimizer`: train a fresh optimizee with an optimizer, step by step.

This is the original's evaluation routine: build the problem's parameters,
restore only the learned optimizer's meta-parameters from a checkpoint,
optimise for `num_iter` steps on minibatches of the problem's data set and
record the objective at every step. Corrections over the original (see
docs/fidelity.md): each call can build its own graph, the recorded loss is
the minibatch loss before the step (ordered by a control dependency), the
update waits for every gradient (so a run repeats bit for bit), the
update is built once, a learned optimizer is recognised by its type rather
than by catching TypeError, an empty checkpoint name means the latest
checkpoint, and the batch order can be seeded.
"""

import collections
import dataclasses
import time
from typing import Any, Callable, Optional

import numpy as np
import tensorflow.compat.v1 as tf

from evaluation import data_pool
from evaluation import flatness
from evaluation import metrics as metrics_lib
from optimizer import checkpoints
from optimizer import trainable_optimizer
from problems import datasets
from problems import problem_generator
from problems import problem_spec
from run_control import interrupts

# The chunk size of full-dataset objectives (bounded memory on conv nets).
FULL_OBJECTIVE_CHUNK = 1000

class TestRun(collections.namedtuple(
    "TestRun", ["objective_values", "parameters", "records"])):
  """What `test_optimizer` returns; unpacks like the original's triple.

  Attributes:
    objective_values: num_iter float32 minibatch losses, each before its
      step.
    parameters: the final parameter arrays.
    records: dict of lists, every `record_every` steps (else empty).
    seconds_per_step: num_iter floats, the wall time of each step's run.
    final_objective: the objective on the whole data set after the last
      step.
    checkpoint_path: the checkpoint restored from, or None.
    metrics: with `metrics`, the recorded history (dict: "steps" and
      "<split>_loss" / "<split>_accuracy" lists), else None.
    final_metrics: with `metrics`, loss and accuracy on every sample of
      every split after the last step (dict), else None.
    curvature: with `curvature`, the `flatness.Curvature` of the final
      parameters on the training data, else None.
    metrics_subset: the most samples per split of the intermediate points,
      or None (whole splits).
  """

  def __new__(cls, objective_values, parameters, records,
              seconds_per_step=(), final_objective=None,
              checkpoint_path=None, **measured):
    self = super().__new__(cls, objective_values, parameters, records)
    self.seconds_per_step = list(seconds_per_step)
    self.final_objective = final_objective
    self.checkpoint_path = checkpoint_path
    for name in ("metrics", "final_metrics", "curvature", "metrics_subset"):
      setattr(self, name, measured.pop(name, None))
    if measured:
      raise TypeError("unknown TestRun fields %s" % sorted(measured))
    return self


def build_with_numpy_seed(spec, numpy_seed):
  """Builds `spec` with NumPy's global generator seeded, then restores it.

  Problems whose random seed is not given draw it (and wrappers their inner
  problems' seeds) from NumPy's global generator. Building every run's copy
  with the same NumPy seed gives every optimizer and seed the same problem,
  without disturbing the global generator's stream.
  """
  state = np.random.get_state()
  np.random.seed(numpy_seed)
  try:
    return spec.build()
  finally:
    np.random.set_state(state)


def _new_graph_needed(optimizer, problem):
  return (not isinstance(optimizer, tf.train.Optimizer) or
          isinstance(problem, problem_spec.Spec))


@dataclasses.dataclass(frozen=True)
class RunOptions:
  """What `test_optimizer` does besides the original's steps.

  Attributes:
    batch_rng: `np.random.RandomState` of the batch order (default: NumPy's
      global generator, as the original).
    log: optional function of a progress line.
    log_every: steps between progress lines.
    metrics: a `metrics.Config`: record loss and accuracy on its splits
      (held-out data) at its interval and after the last step.
    curvature: keyword arguments of `flatness.measure` (lanczos_steps,
      num_probes, max_samples, chunk_size, seed): after the last step,
      estimate the Hessian's top eigenvalue, trace and spectral density of
      the loss on the whole `dataset` (or a fixed random subset of
      `max_samples`).
  """
  batch_rng: Any = None
  log: Optional[Callable[[str], Any]] = None
  log_every: int = 1000
  metrics: Any = None
  curvature: Optional[dict] = None


def test_optimizer(optimizer, problem, num_iter, dataset=None,
                   batch_size=None, seed=None, graph=None, logdir=None,
                   record_every=None, restore_model_name="", options=None):
  """Optimises a freshly initialised problem for `num_iter` steps.

  Args:
    optimizer: a `tf.compat.v1.train.Optimizer` built in `graph`, or a
      function of no arguments that builds one (called inside the graph; the
      way to get a fresh graph per call).
    problem: a built `problem_generator.Problem` or its `problem_spec.Spec`.
    num_iter: number of optimizer steps.
    dataset: `datasets.Dataset`, or None for data-free problems.
    batch_size: minibatch size (default: the whole data set).
    seed: op-level seed of the initial parameters, or a list of arrays to
      start from exactly.
    graph: the graph to build in. Default: a new graph when `optimizer` is a
      function or `problem` a Spec, else the default graph (the original).
    logdir: where the learned optimizer's checkpoint is (a log directory or a
      checkpoint prefix); None: keep the meta-parameters' own initial
      values.
    record_every: if set, every this many steps record the full-data
      objective, gradient and parameter norms, values and optimizer slots.
    restore_model_name: checkpoint file name in `logdir`; empty: the latest.
    options: `RunOptions` (batch order, progress lines, held-out metrics,
      curvature); None: the defaults, the original's behaviour.

  Returns:
    A `TestRun`.

  Raises:
    checkpoints.CheckpointError: `logdir` has no such checkpoint or it does
      not fit the optimizer.
  """
  options = options or RunOptions()
  log, metrics, curvature = options.log, options.metrics, options.curvature
  if graph is None:
    graph = (tf.Graph() if _new_graph_needed(optimizer, problem)
             else tf.get_default_graph())
  if dataset is None:
    dataset, batch_size = datasets.EMPTY_DATASET, 0
  elif batch_size is None:
    batch_size = dataset.size
  with graph.as_default():
    run = _build(optimizer, problem, seed, dataset)
    pool = _measurement_pool(dataset, metrics, curvature)
    split_metrics, record_at = None, ()
    if metrics is not None:
      split_metrics = metrics_lib.SplitMetrics(run.problem, run.true_params,
                                               pool, metrics)
      record_at = set(metrics_lib.recording_steps(num_iter, metrics.every))
    with tf.Session(graph=graph) as sess:
      checkpoint_path = _initialize(sess, run, logdir, restore_model_name)
      run.problem.init_fn(sess)
      if pool is not None:
        pool.initialize(sess)
      batches = dataset.batch_indices(num_iter, batch_size,
                                      rng=options.batch_rng)
      values, times, records = [], [], collections.defaultdict(list)
      started = time.time()
      for i, batch in enumerate(batches):
        interrupts.check()
        if log is not None and i % options.log_every == 0 and i:
          _log_progress(log, i, num_iter, values, started)
        if i in record_at:
          split_metrics.record(sess, i)
        feed = _feed(run, dataset, batch)
        if record_every and i % record_every == 0:
          _record(sess, run, dataset, feed, i, records)
        tic = time.perf_counter()
        if run.pre_step_objective is None:
          value, _ = sess.run([run.objective, run.train_op], feed_dict=feed)
        else:
          value = sess.run(run.pre_step_objective, feed_dict=feed)
          sess.run(run.train_op, feed_dict=feed)
        times.append(time.perf_counter() - tic)
        values.append(np.float32(value))
      if log is not None and num_iter:
        _log_progress(log, num_iter, num_iter, values, started)
      measured = {}
      if split_metrics is not None:
        if num_iter in record_at:
          split_metrics.record(sess, num_iter)
        measured.update(metrics=dict(split_metrics.history),
                        final_metrics=split_metrics.final(sess),
                        metrics_subset=split_metrics.subset_size)
      if curvature is not None:
        measured["curvature"] = flatness.measure(
            sess, run.problem, run.true_params, pool, "train", **curvature)
      final = full_objective(sess, run.true_objective, run, dataset)
      parameters = sess.run(run.true_params)
  return TestRun(values, parameters, dict(records), times, final,
                 checkpoint_path, **measured)


def _measurement_pool(dataset, metrics, curvature):
  """The in-graph data of the measurements, or None when none needs data.

  With held-out metrics the pool holds their splits, shuffled so that
  their first samples are the fixed subsets of both measurements; the
  training split is `dataset`, the data the optimizee trains on.
  """
  if metrics is not None:
    return data_pool.DataPool(metrics.splits, shuffled=tuple(metrics.splits))
  if curvature is not None and dataset.size:
    return data_pool.DataPool({"train": dataset}, shuffled=("train",))
  return None


class _Run(collections.namedtuple("_Run", [
    "problem", "optimizer", "params", "true_params", "data", "labels",
    "objective", "true_objective", "pre_step_objective", "grads",
    "train_op"])):
  """The ops of one test run."""


def _build(optimizer, problem, seed, dataset):
  """Builds parameters, objective and the update in the default graph."""
  if isinstance(problem, problem_spec.Spec):
    problem = problem.build()
  if isinstance(seed, (list, tuple)):
    params = problem_generator.init_fixed_variables(seed)
  else:
    params = problem.init_variables(seed)
  data = tf.placeholder(tf.float32, shape=_shape(dataset.data), name="data")
  labels = tf.placeholder(tf.int32, shape=_shape(dataset.labels),
                          name="labels")
  objective = problem.objective(params, data, labels)
  grads = problem.gradients(objective, params)
  if not isinstance(optimizer, tf.train.Optimizer):
    optimizer = optimizer()
  # The step waits for the recorded loss, so the loss is the pre-step one,
  # and for every gradient: reads of reference variables alias their
  # buffers, so an update applied while another gradient was still being
  # computed changed that gradient (a race that made two identical runs of
  # the baselines differ from the first steps on).
  with tf.control_dependencies([objective] + _gradient_tensors(grads)):
    train_op = optimizer.apply_gradients(zip(grads, params))
  true_params = [tf.convert_to_tensor(p) for p in params]
  true_objective = objective
  pre_step_objective = None
  if (isinstance(optimizer, trainable_optimizer.TrainableOptimizer) and
      optimizer.use_attention):
    # Variables hold the attended point; report the loss at the parameters.
    true_params = optimizer.true_parameters(params)
    true_objective = problem.objective(true_params, data, labels)
    pre_step_objective = true_objective
  return _Run(problem, optimizer, params, true_params, data, labels,
              objective, true_objective, pre_step_objective, grads, train_op)


def _gradient_tensors(grads):
  """The tensors of `grads` (the parts of IndexedSlices), Nones left out."""
  tensors = []
  for grad in grads:
    if isinstance(grad, tf.IndexedSlices):
      tensors += [grad.values, grad.indices]
    elif grad is not None:
      tensors.append(grad)
  return tensors


def _shape(array):
  return [None] + list(array.shape[1:]) if np.ndim(array) else None


def _initialize(sess, run, logdir, restore_model_name):
  """Initialises everything but restored meta-parameters, then restores."""
  meta = checkpoints.meta_variables(sess.graph)
  path = None
  if logdir is not None and meta:
    path = checkpoints.resolve_checkpoint(logdir, restore_model_name)
    checkpoints.check_compatible(path, meta)
  restored = set(v.op.name for v in meta) if path else set()
  sess.run(tf.variables_initializer(
      [v for v in tf.global_variables() if v.op.name not in restored]))
  sess.run(tf.local_variables_initializer())
  if path:
    checkpoints.restore_meta_parameters(sess, path, meta)
  return path


def _feed(run, dataset, batch):
  if not dataset.size:
    return {run.data: dataset.data, run.labels: dataset.labels}
  return {run.data: dataset.data[batch], run.labels: dataset.labels[batch]}


def full_objective(sess, objective, run, dataset,
                   chunk=FULL_OBJECTIVE_CHUNK):
  """The objective on the whole data set, as a size-weighted chunk mean.

  The evaluation problems' objectives are means over the batch, so the
  weighted mean of chunk objectives equals the whole-set objective.
  """
  if not dataset.size:
    return float(sess.run(objective, feed_dict=_feed(run, dataset, None)))
  total = 0.
  for start in range(0, dataset.size, chunk):
    index = np.arange(start, min(start + chunk, dataset.size))
    total += len(index) * float(sess.run(objective,
                                         feed_dict=_feed(run, dataset, index)))
  return total / dataset.size


def _record(sess, run, dataset, feed, step, records):
  """Appends the original's record entries for `step`."""
  grads = [g.values if isinstance(g, tf.IndexedSlices) else g
           for g in run.grads]
  grad_values, param_values = sess.run([grads, run.true_params],
                                        feed_dict=feed)
  records["objective"].append(
      full_objective(sess, run.true_objective, run, dataset))
  records["grad_norm"].append(
      float(np.sqrt(sum(np.sum(np.square(g)) for g in grad_values))))
  records["param_norm"].append(
      float(np.sqrt(sum(np.sum(np.square(p)) for p in param_values))))
  records["grad"].append(grad_values)
  records["param"].append(param_values)
  records["iter"].append(step)
  for param in run.params:
    for slot_name in run.optimizer.get_slot_names():
      slot = run.optimizer.get_slot(param, slot_name)
      if slot is not None:
        records["%s_%s" % (param.name, slot_name)].append(sess.run(slot))


def _log_progress(log, done, total, values, started):
  elapsed = time.time() - started
  recent = values[-100:]
  log("  step %d/%d  loss %.5g (mean of last %d)  %.2f ms/step  elapsed "
      "%.0fs  ETA %.0fs" % (done, total, float(np.mean(recent)), len(recent),
                            1e3 * elapsed / done, elapsed,
                            elapsed / done * (total - done)))
