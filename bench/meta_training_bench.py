"""Benchmark: meta-training HierarchicalRNN on the MNIST MLP problem.

Reports, in one run: graph-construction seconds, seconds per meta-iteration
(one unroll and meta-update per iteration, as a fixed schedule with
fix_num_steps = unroll length), seconds per evaluation unroll (no
meta-update; the whole-mini-dataset objective at the last step only, as
`meta_training.evaluation.evaluate` runs it, and at every step, as the
original did), and peak resident memory of a process doing just that, for
unroll lengths 10, 20 and 40, with their ratios to length 20 and the memory
slope.

Each measurement runs in its own child process so that peak memory is per
measurement. With --repetitions=N every child runs N times, interleaved; the
tables show medians and the spread (min-max) of the timings.

Usage:
  L2O_DATA_DIR=<folder with mnist/> python bench/meta_training_bench.py
  L2O_DATA_DIR=... python bench/meta_training_bench.py --regularizers
      (seconds per meta-iteration with each --reg_option, relative to none;
      --regularizers=none,hessian-esd measures only those)
  L2O_DATA_DIR=... python bench/versus_base.py --base=<checkout> -- \
      bench/meta_training_bench.py --child 20 none
      (unroll length 20 in this checkout and in another one, e.g. the code
      before a change, alternating)
  ... --repetitions=3
"""

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)

LENGTHS = (10, 20, 40)
ITERATIONS = 3
EVALUATION_UNROLLS = 5
REGULARIZERS = ("none", "hessian", "hessian-ev", "hessian-esd", "jacob")


def measure(length, reg_option="none"):
  """Builds the graph and times ITERATIONS meta-iterations of one unroll.

  With a `reg_option` other than "none", the regulariser (10 iterations) is
  switched on in every unroll (--reg_optimizer with
  --regularize_time=always). Then times EVALUATION_UNROLLS evaluation
  unrolls of the same length each way (see the module docstring).
  """
  import graph_mode  # pylint: disable=g-import-not-at-top
  graph_mode.enable()
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  import metarun  # pylint: disable=g-import-not-at-top
  from meta_training import config as meta_config  # pylint: disable=g-import-not-at-top
  from meta_training import data as data_lib  # pylint: disable=g-import-not-at-top
  from meta_training import graph as graph_lib  # pylint: disable=g-import-not-at-top
  from problems import problem_sets  # pylint: disable=g-import-not-at-top
  tf.logging.set_verbosity(tf.logging.ERROR)
  values = {name: metarun.FLAGS[name].default for name in metarun.FLAGS}
  spec, dataset, batch_size = problem_sets.mnist_mlp_problems()[0]
  rng = np.random.RandomState(0)
  start = time.time()
  regularizer = None
  if reg_option != "none":
    regularizer = metarun.regularizer_config(
        dict(values, reg_optimizer=True, reg_option=reg_option,
             regularize_time="always"))
  with tf.Graph().as_default() as graph_obj:
    optimizer_spec = metarun.optimizer_spec(values)
    graph = graph_lib.build_meta_graph(
        spec, optimizer_spec,
        meta_config.MetaOptimizer(1e-6, 0.9, 1e-20, 1e4, 0.), False,
        regularizer)
    init = tf.group(tf.global_variables_initializer(),
                    tf.local_variables_initializer())
    build_seconds = time.time() - start
    num_ops = len(graph_obj.get_operations())
    out = graph.train_output

    def feed_for(first, switch):
      data = data_lib.unroll_data(dataset, batch_size, [length], 10000,
                                  False, rng)[0]
      x0 = [rng.standard_normal(s).astype(np.float32)
            for s in graph.problem.param_shapes]
      return data_lib.feed(out, x0, [length], 0, data, first, switch)

    with tf.Session() as sess:
      sess.run(init)
      times = []
      for k in range(ITERATIONS + 1):
        feed = feed_for(k == 0, reg_option != "none")
        tick = time.time()
        sess.run([out.meta_objective, graph.train_op], feed)
        times.append(time.time() - tick)
      evaluation = {}
      for record in (False, True, False, True):
        for _ in range(EVALUATION_UNROLLS + 1):
          feed = feed_for(False, False)
          # (A checkout from before record_objectives records every step.)
          if hasattr(out, "record_objectives"):
            feed[out.record_objectives] = record
          tick = time.time()
          sess.run([out.problem_objectives, graph.propagate_op], feed)
          evaluation.setdefault(record, []).append(time.time() - tick)
  peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.
  # The first run of a set of fetches includes graph optimisation; report
  # the steady state.
  return {"length": length, "reg": reg_option,
          "build_s": build_seconds,
          "ops": num_ops, "mini_dataset": min(10000, dataset.size),
          "first_iteration_s": times[0],
          "seconds_per_iteration": float(np.median(times[1:])),
          "evaluation_unroll_s": float(np.median(evaluation[False][1:])),
          "evaluation_unroll_every_step_s": float(
              np.median(evaluation[True][1:])),
          "peak_rss_mib": peak_mib}


def _child(*args):
  """Runs `measure(*args)` in a child process."""
  result = subprocess.run([sys.executable, os.path.abspath(__file__),
                           "--child"] + [str(a) for a in args],
                          capture_output=True, text=True, check=False,
                          cwd=_ROOT)
  if result.returncode:
    sys.exit("benchmark child %s failed:\n%s" % (args, result.stderr[-3000:]))
  return json.loads(result.stdout.strip().splitlines()[-1])


def _repeated(configs, repetitions):
  """Runs every config `repetitions` times, interleaved; lists per config."""
  runs = {config: [] for config in configs}
  for _ in range(repetitions):
    for config in configs:
      runs[config].append(_child(*config))
  return runs


def _stat(rows, key):
  """(median, min, max) of `key` over `rows`."""
  values = [r[key] for r in rows]
  return float(np.median(values)), min(values), max(values)


def _spread(stat, fmt="%.2f"):
  median, low, high = stat
  return (fmt + " (" + fmt + "-" + fmt + ")") % (median, low, high)


def _option(name, default):
  for arg in sys.argv[1:]:
    if arg == "--" + name:
      return default
    if arg.startswith("--%s=" % name):
      return arg.split("=", 1)[1]
  return None


def report_regularizers(options, repetitions):
  runs = _repeated([(20, r) for r in options], repetitions)
  base = _stat(runs[(20, options[0])], "seconds_per_iteration")[0]
  print("Regulariser cost, unroll length 20, switched on in every unroll; "
        "median (min-max) of %d runs" % repetitions)
  print("%-12s %20s %7s %22s %8s %12s" % (
      "reg_option", "build s", "ops", "s/iteration", "vs %s" % options[0],
      "peak RSS MiB"))
  for r in options:
    rows = runs[(20, r)]
    iteration = _stat(rows, "seconds_per_iteration")
    ratios = [row["seconds_per_iteration"] / base_row["seconds_per_iteration"]
              for row, base_row in zip(rows, runs[(20, options[0])])]
    print("%-12s %20s %7d %22s %8s %12.0f" % (
        r, _spread(_stat(rows, "build_s")), rows[0]["ops"],
        _spread(iteration, "%.3f"), "%.2f" % (iteration[0] / base),
        _stat(rows, "peak_rss_mib")[0]))
    if r != options[0]:
      print("%-12s per-run ratios to %s: %s" % (
          "", options[0], ", ".join("%.2f" % x for x in ratios)))


def report_lengths(repetitions):
  runs = _repeated([(length,) for length in LENGTHS], repetitions)
  rows = {length: runs[(length,)] for length in LENGTHS}
  base = {key: _stat(rows[20], key)[0] for key in
          ("seconds_per_iteration", "peak_rss_mib")}
  print("HierarchicalRNN [10, 20, 20] on MNIST MLP 784-20-10 sigmoid, "
        "batch 128, mini-dataset %d samples, %d cores; median (min-max) of "
        "%d runs" % (rows[20][0]["mini_dataset"], os.cpu_count(),
                     repetitions))
  print("%-6s %18s %18s %21s %6s %21s %21s %8s %6s" % (
      "unroll", "build s", "first it s", "s/iteration", "vs 20",
      "eval unroll s", "eval every step s", "RSS MiB", "vs 20"))
  for length in LENGTHS:
    group = rows[length]
    iteration = _stat(group, "seconds_per_iteration")
    rss = _stat(group, "peak_rss_mib")[0]
    print("%-6d %18s %18s %21s %6.2f %21s %21s %8.0f %6.2f" % (
        length, _spread(_stat(group, "build_s")),
        _spread(_stat(group, "first_iteration_s")),
        _spread(iteration, "%.3f"),
        iteration[0] / base["seconds_per_iteration"],
        _spread(_stat(group, "evaluation_unroll_s"), "%.3f"),
        _spread(_stat(group, "evaluation_unroll_every_step_s"), "%.3f"),
        rss, rss / base["peak_rss_mib"]))
  rss = [_stat(rows[length], "peak_rss_mib")[0] for length in LENGTHS]
  slope = np.polyfit(LENGTHS, rss, 1)[0]
  print("peak RSS slope: %.1f MiB per unroll step (least squares over "
        "lengths %s)" % (slope, ", ".join(str(x) for x in LENGTHS)))


def main():
  if len(sys.argv) >= 3 and sys.argv[1] == "--child":
    reg_option = sys.argv[3] if len(sys.argv) > 3 else "none"
    print(json.dumps(measure(int(sys.argv[2]), reg_option)))
    return
  repetitions = int(_option("repetitions", "1") or 1)
  regularizers = _option("regularizers", ",".join(REGULARIZERS))
  if regularizers is not None:
    options = regularizers.split(",")
    unknown = [r for r in options if r not in REGULARIZERS]
    if unknown:
      sys.exit("unknown --regularizers %s; expected some of %s" %
               (",".join(unknown), ",".join(REGULARIZERS)))
    report_regularizers(options, repetitions)
    return
  report_lengths(repetitions)


if __name__ == "__main__":
  main()
