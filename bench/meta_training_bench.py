"""Benchmark: meta-training HierarchicalRNN on the MNIST MLP problem.

Reports, in one run: graph-construction seconds, seconds per meta-iteration
(one unroll and meta-update per iteration, as a fixed schedule with
fix_num_steps = unroll length), and peak resident memory of a process doing
just that, for unroll lengths 10, 20 and 40, and their ratios to length 20.

Each length runs in its own child process so that peak memory is per length.

Usage:
  L2O_DATA_DIR=<folder with mnist/> python bench/meta_training_bench.py
  L2O_DATA_DIR=... python bench/meta_training_bench.py --regularizers
      (seconds per meta-iteration with each --reg_option, relative to none)
"""

import json
import os
import resource
import subprocess
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)

LENGTHS = (10, 20, 40)
ITERATIONS = 3
REGULARIZERS = (None, "hessian", "hessian-ev", "hessian-esd", "jacob")


def measure(length, reg_option=None):
  """Builds the graph and times ITERATIONS meta-iterations of one unroll.

  With `reg_option`, the regulariser (10 iterations) is switched on in every
  unroll (--reg_optimizer with --regularize_time=always).
  """
  import graph_mode  # pylint: disable=g-import-not-at-top
  graph_mode.enable()
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  import metaopt  # pylint: disable=g-import-not-at-top
  import metarun  # pylint: disable=g-import-not-at-top
  from problems import problem_sets  # pylint: disable=g-import-not-at-top
  tf.logging.set_verbosity(tf.logging.ERROR)
  values = {name: metarun.FLAGS[name].default for name in metarun.FLAGS}
  spec, dataset, batch_size = problem_sets.mnist_mlp_problems()[0]
  rng = np.random.RandomState(0)
  start = time.time()
  regularizer = {}
  if reg_option:
    regularizer = metarun.regularizer_settings(
        dict(values, reg_optimizer=True, reg_option=reg_option,
             regularize_time="always"))
  with tf.Graph().as_default():
    graph = metaopt.build_meta_graph(spec, metarun.optimizer_spec(values),
                                     1e-6, 0.9, 1e-20, 1e4, 0., False,
                                     **regularizer)
    init = tf.group(tf.global_variables_initializer(),
                    tf.local_variables_initializer())
    build_seconds = time.time() - start
    with tf.Session() as sess:
      sess.run(init)
      times = []
      for k in range(ITERATIONS + 1):
        data = metaopt.unroll_data(dataset, batch_size, [length], 10000,
                                   False, rng)[0]
        x0 = [rng.standard_normal(s).astype(np.float32)
              for s in graph.problem.param_shapes]
        feed = metaopt._feed(graph.train_output, x0, [length], 0, data,  # pylint: disable=protected-access
                             k == 0, switch=bool(reg_option))
        tick = time.time()
        sess.run([graph.train_output.metaobj, graph.train_op], feed)
        times.append(time.time() - tick)
  peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.
  # The first run includes graph optimisation; report the steady state.
  return {"length": length, "build_s": build_seconds,
          "mini_dataset": min(10000, dataset.size),
          "first_iteration_s": times[0],
          "seconds_per_iteration": float(np.median(times[1:])),
          "peak_rss_mib": peak_mib}


def _child(*args):
  result = subprocess.run([sys.executable, os.path.abspath(__file__),
                           "--child"] + [str(a) for a in args],
                          capture_output=True, text=True, check=False)
  if result.returncode:
    sys.exit("benchmark child %s failed:\n%s" % (args, result.stderr[-3000:]))
  return json.loads(result.stdout.strip().splitlines()[-1])


def main():
  if len(sys.argv) >= 3 and sys.argv[1] == "--child":
    reg_option = sys.argv[3] if len(sys.argv) > 3 else None
    print(json.dumps(measure(int(sys.argv[2]), reg_option)))
    return
  if "--regularizers" in sys.argv[1:]:
    rows = [dict(_child(20, *([r] if r else [])), reg=r or "none")
            for r in REGULARIZERS]
    base = rows[0]
    print("Regulariser cost, unroll length 20, switched on in every unroll")
    print("%-12s %9s %12s %10s %12s" % ("reg_option", "build s",
                                         "s/iteration", "vs none",
                                         "peak RSS MiB"))
    for r in rows:
      print("%-12s %9.2f %12.3f %10.2f %12.0f" % (
          r["reg"], r["build_s"], r["seconds_per_iteration"],
          r["seconds_per_iteration"] / base["seconds_per_iteration"],
          r["peak_rss_mib"]))
    return
  rows = [_child(length) for length in LENGTHS]
  base = [r for r in rows if r["length"] == 20][0]
  print("HierarchicalRNN [10, 20, 20] on MNIST MLP 784-20-10 sigmoid, "
        "batch 128, mini-dataset %d samples, %d cores" %
        (base["mini_dataset"], os.cpu_count()))
  print("%-7s %9s %11s %12s %10s %12s %10s" % (
      "unroll", "build s", "first it s", "s/iteration", "vs len 20",
      "peak RSS MiB", "vs len 20"))
  for r in rows:
    print("%-7d %9.2f %11.2f %12.3f %10.2f %12.0f %10.2f" % (
        r["length"], r["build_s"], r["first_iteration_s"],
        r["seconds_per_iteration"],
        r["seconds_per_iteration"] / base["seconds_per_iteration"],
        r["peak_rss_mib"], r["peak_rss_mib"] / base["peak_rss_mib"]))


if __name__ == "__main__":
  main()
