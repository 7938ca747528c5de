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

Usage:
  python bench/apply_step_bench.py [--repetitions=5] [--steps=100]
"""

import argparse
import json
import os
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)

HRNN_MACS_PER_PARAMETER = 700
ADAM_MACS_PER_PARAMETER = 5


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
      optimizer = settings.optimizer_spec(settings.defaults(),
                                          random_seed=0).build()
    train_op = optimizer.apply_gradients(zip(grads, params))
    init = tf.global_variables_initializer()
  return graph, train_op, init, flops // 2, problem.num_params


def seconds_per_step(graph, train_op, init, steps, warmup=20):
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  with tf.Session(graph=graph) as sess:
    sess.run(init)
    for _ in range(warmup):
      sess.run(train_op)
    start = time.perf_counter()
    for _ in range(steps):
      sess.run(train_op)
    return (time.perf_counter() - start) / steps


def measure(model, repetitions, steps):
  """Ratios of repetitions alternating Adam and HierarchicalRNN."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  built = {name: build_step(model, name) for name in ("Adam", "HRNN")}
  _, _, _, macs, params = built["Adam"]
  times = {"Adam": [], "HRNN": []}
  for _ in range(repetitions):
    for name in ("Adam", "HRNN"):
      graph, train_op, init, _, _ = built[name]
      times[name].append(seconds_per_step(graph, train_op, init, steps))
  ratios = np.array(times["HRNN"]) / np.array(times["Adam"])
  floor = ((3 * macs + HRNN_MACS_PER_PARAMETER * params) /
           (3 * macs + ADAM_MACS_PER_PARAMETER * params))
  return {
      "model": model, "parameters": int(params),
      "forward_macs": int(macs),
      "adam_ms": float(np.median(times["Adam"]) * 1e3),
      "hrnn_ms": float(np.median(times["HRNN"]) * 1e3),
      "ratio_median": float(np.median(ratios)),
      "ratio_min": float(np.min(ratios)), "ratio_max": float(np.max(ratios)),
      "floor": float(floor),
      "hrnn_graph_ops": len(built["HRNN"][0].get_operations()),
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repetitions", type=int, default=5)
  parser.add_argument("--steps", type=int, default=100)
  parser.add_argument("--models", default="mlp,conv")
  args = parser.parse_args()
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import graph_mode  # pylint: disable=g-import-not-at-top
  graph_mode.enable()
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  tf.logging.set_verbosity(tf.logging.ERROR)
  for model in args.models.split(","):
    result = measure(model, args.repetitions, args.steps)
    print("%s: HierarchicalRNN %.2f ms, Adam %.2f ms per step; ratio %.2f "
          "(min %.2f, max %.2f over %d repetitions); arithmetic floor %.2f" %
          (model, result["hrnn_ms"], result["adam_ms"],
           result["ratio_median"], result["ratio_min"], result["ratio_max"],
           args.repetitions, result["floor"]))
    print(json.dumps(result))


if __name__ == "__main__":
  main()
