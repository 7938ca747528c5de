"""Benchmark: one learned-optimizer step against one Adam step (apply mode).

For the MNIST MLP (784-20-10 sigmoid, batch 128) and the evaluation MNIST
conv net (PooledConvNet 3x3x16, 5x5x32, affine 512, batch 128), reports the
time of `sess.run(train_op)` with HierarchicalRNN (the original flags'
defaults) and with tf.compat.v1.train.AdamOptimizer on the same model, and
their ratio: the median of several alternating repetitions and the spread.
The batch is a fixed random tensor of MNIST's shape (timing does not depend
on the pixel values), so no data files are needed and no feeding is timed.

Next to each ratio it prints the arithmetic floor
  (3 F + 700 P) / (3 F + 5 P),
F = forward multiply-adds of the model (from TensorFlow's FLOP counter),
3 F for forward and backward, P = parameters, about 700 multiply-adds per
parameter for the HierarchicalRNN's per-coordinate GRU and readouts and 5
for Adam.

With --ablations it also times two cut-down steps of the default
HierarchicalRNN, to show where a step's time goes (diagnostics, not
optimizers): "no level-0 GRU" (the new level-0 state is the old one: the
gates, the candidate and their state matmuls are skipped) and "state copy"
(the packed state is read and written back scaled, the update is plain
gradient descent: the cost of carrying the state through a step).

Usage:
  python bench/apply_step_bench.py [--repetitions=5] [--steps=100]
      [--models=mlp,conv] [--variants=HRNN,...] [--threads=0] [--ablations]
"""

import argparse
import contextlib
import json
import os
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)

HRNN_MACS_PER_PARAMETER = 700
ADAM_MACS_PER_PARAMETER = 5
# HierarchicalRNN variants timed against Adam: constructor overrides of the
# default arguments ("HRNN" is the default optimizer).
VARIANTS = {
    "HRNN": {},
    "HRNN no XLA": {"xla_apply": False},
}
ABLATIONS = ("no level-0 GRU", "state copy")


@contextlib.contextmanager
def ablated(name):
  """Builds the default HierarchicalRNN's step cut down as `name` says."""
  from optimizer import hierarchical_rnn  # pylint: disable=g-import-not-at-top
  from optimizer import rnn_cells  # pylint: disable=g-import-not-at-top
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  if name == "no level-0 GRU":
    owner, attribute = rnn_cells.BiasGRUCell, "columns"

    def replacement(self, weights, input_part, state):
      # Keeps the input matmul: only the recurrence itself is removed.
      return state + 0. * input_part[:self.num_units]
  else:
    owner, attribute = hierarchical_rnn.HierarchicalRNN, "_step"

    def replacement(self, params, grads, states, global_state, first, xla,
                    differentiable):
      del self, params, first, xla, differentiable
      steps = [1e-3 * tf.convert_to_tensor(g) for g in grads]
      new_states = [{key: value * 0.999 for key, value in state.items()}
                    for state in states]
      return steps, None, new_states, list(global_state)
  original = getattr(owner, attribute)
  setattr(owner, attribute, replacement)
  try:
    yield
  finally:
    setattr(owner, attribute, original)


def build_problem(model):
  """The problem of `model` ("mlp" or "conv") and its batch size."""
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  from problems import problem_generator as pg  # pylint: disable=g-import-not-at-top
  if model == "mlp":
    return pg.FullyConnected(784, 10, hidden_sizes=(20,),
                             activation=tf.nn.sigmoid), 128
  return pg.PooledConvNet((1, 28, 28), 10, [(3, 3, 16, 1), (5, 5, 32, 1)],
                          activation=tf.nn.relu, affine_size=512), 128


def build_step(model, optimizer_name):
  """(graph, train op, initializer, forward multiply-adds, parameters)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  from optimizer import settings  # pylint: disable=g-import-not-at-top
  graph = tf.Graph()
  with graph.as_default():
    problem, batch_size = build_problem(model)
    rng = np.random.RandomState(0)
    data = tf.constant(rng.rand(batch_size, 28, 28, 1).astype(np.float32))
    labels = tf.constant(rng.randint(10, size=batch_size).astype(np.int32))
    params = problem.init_variables(seed=1)
    loss = problem.objective(params, data, labels)
    options = tf.profiler.ProfileOptionBuilder(
        tf.profiler.ProfileOptionBuilder.float_operation()).with_empty_output()
    flops = tf.profiler.profile(graph, options=options.build(),
                                cmd="scope").total_float_ops
    grads = problem.gradients(loss, params)
    if optimizer_name == "Adam":
      optimizer = tf.train.AdamOptimizer(1e-3)
    else:
      spec = settings.optimizer_spec(settings.defaults(), random_seed=0)
      spec = spec._replace(kwargs=dict(
          spec.kwargs, **VARIANTS.get(optimizer_name, {})))
      optimizer = spec.build()
    with (ablated(optimizer_name) if optimizer_name in ABLATIONS
          else contextlib.nullcontext()):
      train_op = optimizer.apply_gradients(zip(grads, params))
    init = tf.global_variables_initializer()
  return graph, train_op, init, flops // 2, problem.num_params


def seconds_per_step(graph, train_op, init, steps, warmup=20, threads=0):
  """Mean wall seconds of `steps` runs of `train_op` after `warmup` runs.

  `threads` > 0 limits TensorFlow to that many intra- and inter-op threads
  (0: its default, one per core).
  """
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  config = tf.ConfigProto(intra_op_parallelism_threads=threads,
                          inter_op_parallelism_threads=threads)
  with tf.Session(graph=graph, config=config) as sess:
    sess.run(init)
    for _ in range(warmup):
      sess.run(train_op)
    start = time.perf_counter()
    for _ in range(steps):
      sess.run(train_op)
    return (time.perf_counter() - start) / steps


def measure(model, repetitions, steps, variants, threads=0):
  """Step times and ratios to Adam, repetitions alternating the optimizers."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  names = ["Adam"] + list(variants)
  built = {name: build_step(model, name) for name in names}
  _, _, _, macs, params = built["Adam"]
  times = {name: [] for name in names}
  for _ in range(repetitions):
    for name in names:
      graph, train_op, init, _, _ = built[name]
      times[name].append(seconds_per_step(graph, train_op, init, steps,
                                          threads=threads))
  floor = ((3 * macs + HRNN_MACS_PER_PARAMETER * params) /
           (3 * macs + ADAM_MACS_PER_PARAMETER * params))
  result = {
      "model": model, "parameters": int(params),
      "forward_macs": int(macs), "floor": float(floor),
      "adam_ms": float(np.median(times["Adam"]) * 1e3), "variants": {},
  }
  for name in variants:
    ratios = np.array(times[name]) / np.array(times["Adam"])
    result["variants"][name] = {
        "ms": float(np.median(times[name]) * 1e3),
        "ratio_median": float(np.median(ratios)),
        "ratio_min": float(np.min(ratios)),
        "ratio_max": float(np.max(ratios)),
        "graph_ops": len(built[name][0].get_operations()),
    }
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repetitions", type=int, default=5)
  parser.add_argument("--steps", type=int, default=100)
  parser.add_argument("--models", default="mlp,conv")
  parser.add_argument("--threads", type=int, default=0,
                      help="TensorFlow intra- and inter-op threads (0: one "
                      "per core)")
  parser.add_argument("--variants", default=",".join(VARIANTS),
                      help="HierarchicalRNN variants to time, of %s" %
                      ",".join(VARIANTS))
  parser.add_argument("--ablations", action="store_true",
                      help="also time the cut-down steps %s" %
                      ", ".join(ABLATIONS))
  args = parser.parse_args()
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import graph_mode  # pylint: disable=g-import-not-at-top
  graph_mode.enable()
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  tf.logging.set_verbosity(tf.logging.ERROR)
  variants = args.variants.split(",")
  for name in variants:
    if name not in VARIANTS:
      parser.error("--variants: unknown %r; expected some of %s" %
                   (name, ",".join(VARIANTS)))
  if args.ablations:
    variants += list(ABLATIONS)
  for model in args.models.split(","):
    result = measure(model, args.repetitions, args.steps, variants,
                     args.threads)
    print("%s: Adam %.2f ms per step; arithmetic floor %.2f" %
          (model, result["adam_ms"], result["floor"]))
    for name in variants:
      row = result["variants"][name]
      print("  %-16s %6.2f ms  ratio %.2f (min %.2f, max %.2f over %d "
            "repetitions)" % (name, row["ms"], row["ratio_median"],
                              row["ratio_min"], row["ratio_max"],
                              args.repetitions))
    print(json.dumps(result))


if __name__ == "__main__":
  main()
