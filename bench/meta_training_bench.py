"""Benchmark: meta-training HierarchicalRNN on the MNIST MLP problem.

Reports, in one run: graph-construction seconds, seconds per meta-iteration
(one unroll and meta-update per iteration, as a fixed schedule with
fix_num_steps = unroll length), seconds per evaluation unroll through the
training graph (no meta-update; the whole-mini-dataset objective at the
last step only, and at every step, as the original did; since issue 19
`meta_training.evaluation.evaluate` runs whole trajectories through a
forward-only unroll instead, measured by --curriculum), and peak resident memory of a process doing just that, for
unroll lengths 10, 20 and 40, with their ratios to length 20 and the memory
slope.

Each measurement runs in its own child process so that peak memory is per
measurement. With --repetitions=N every child runs N times, interleaved; the
tables show medians and the spread (min-max) of the timings.

With --curriculum=2,4 it measures instead the README's "Train L2O-Scale
(enhanced)" configuration (--if_cl --if_mt, unrolls of 20 steps) at the
given curriculum stages without going through the earlier ones: stage s
runs num_unrolls_train[s] training unrolls (one meta-update each) and then
the evaluation of `evaluation_epochs` trajectories of the next stage's
horizon, as a meta-iteration of that stage does (checkpoint files aside).
Stage 2: 25 unrolls, trajectories of 1,000 steps; stage 4: 75 unrolls,
2,000 steps. Reports seconds per training unroll, per evaluation, per
meta-iteration (their sum), per imitation meta-iteration, and peak RSS.

Usage:
  L2O_DATA_DIR=<folder with mnist/> python bench/meta_training_bench.py
  L2O_DATA_DIR=... python bench/meta_training_bench.py --curriculum=2,4
  L2O_DATA_DIR=... python bench/versus_base.py --base=<checkout> -- \
      bench/meta_training_bench.py --child curriculum 2
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

    # (A checkout from before the estimators (issue 29) keeps it in graph.)
    train_op = (graph.train_op if hasattr(graph, "train_op")
                else graph.estimator.train_op)
    with tf.Session() as sess:
      sess.run(init)
      times = []
      for k in range(ITERATIONS + 1):
        feed = feed_for(k == 0, reg_option != "none")
        tick = time.time()
        sess.run([out.meta_objective, train_op], feed)
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


# The README's "Train L2O-Scale (enhanced)" command, as flag values.
ENHANCED_FLAGS = dict(
    regularize_time="none", alpha=1e-4, reg_optimizer=True,
    reg_option="hessian-esd", include_mnist_mlp_problems=True, num_problems=1,
    num_meta_iterations=100, fix_unroll=True, fix_unroll_length=20,
    evaluation_period=1, evaluation_epochs=5, use_second_derivatives=False,
    if_cl=True, if_mt=True, mt_ratio=0.1, mt_k=1)


def measure_curriculum(stage, meta_iterations=1):
  """Times meta-iterations of the enhanced command at curriculum `stage`.

  Runs through `meta_training.loop.MetaTrainer` (its graph, session,
  meta-iteration and evaluation), with the stage's unroll counts: one
  untimed meta-iteration and evaluation first (executor preparation and
  XLA compilation), then `meta_iterations` timed ones, then two imitation
  meta-iterations (the second one timed).
  """
  import tempfile  # pylint: disable=g-import-not-at-top
  import graph_mode  # pylint: disable=g-import-not-at-top
  graph_mode.enable()
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  import metarun  # pylint: disable=g-import-not-at-top
  from meta_training import config as meta_config  # pylint: disable=g-import-not-at-top
  from meta_training import curriculum  # pylint: disable=g-import-not-at-top
  from meta_training import loop  # pylint: disable=g-import-not-at-top
  from meta_training import roles  # pylint: disable=g-import-not-at-top
  from meta_training import teacher as teacher_lib  # pylint: disable=g-import-not-at-top
  from problems import problem_sets  # pylint: disable=g-import-not-at-top
  from run_control import configs  # pylint: disable=g-import-not-at-top
  tf.logging.set_verbosity(tf.logging.ERROR)
  values = {name: metarun.FLAGS[name].default for name in metarun.FLAGS}
  values.update(ENHANCED_FLAGS)
  length = values["fix_unroll_length"]
  schedule = curriculum.CurriculumSchedule(length)
  train_lengths = [length] * schedule.num_unrolls_train[stage]
  eval_lengths = [length] * schedule.num_unrolls_eval[stage]
  settings = loop.Settings(
      configs.from_flags(meta_config.Schedule, values, random_problems=True),
      configs.from_flags(meta_config.MetaOptimizer, values),
      configs.from_flags(meta_config.Evaluation, values),
      configs.from_flags(meta_config.Data, values),
      metarun.regularizer_config(values, open(os.devnull, "w")),
      configs.from_flags(meta_config.Imitation, values))
  spec, dataset, batch_size = problem_sets.mnist_mlp_problems()[0]
  logdir = tempfile.mkdtemp(prefix="bench_curriculum_")
  trainer = loop.MetaTrainer(logdir, metarun.optimizer_spec(values),
                             settings, 0, roles.SingleProcess(),
                             open(os.devnull, "w"))
  tick = time.time()
  graph_obj, graph, start_session = trainer._build(0, spec, None)  # pylint: disable=protected-access
  build_seconds = time.time() - tick
  teacher = teacher_lib.Teacher(graph.problem, settings.imitation.teacher_name,
                                settings.imitation.teacher_learning_rate)
  timings = {"train": [], "evaluation": [], "imitation": []}
  with tf.Session(graph=graph_obj) as sess:
    start_session(sess)
    trainer._sess, trainer._graph = sess, graph  # pylint: disable=protected-access
    trainer._batch_size = batch_size  # pylint: disable=protected-access
    for k in range(meta_iterations + 1):
      trainer._local_k = k  # pylint: disable=protected-access
      graph.problem.init_fn(sess)
      tick = time.time()
      _, trainer._last_data = trainer._meta_iteration(  # pylint: disable=protected-access
          dataset, train_lengths, None)
      timings["train"].append(time.time() - tick)
      tick = time.time()
      cost = trainer.evaluate(eval_lengths)
      timings["evaluation"].append(time.time() - tick)
    for _ in range(2):
      tick = time.time()
      trainer._meta_iteration(dataset, train_lengths, teacher)  # pylint: disable=protected-access
      timings["imitation"].append(time.time() - tick)
  teacher.close()
  peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.
  train_s = float(np.median(timings["train"][1:]))
  evaluation_s = float(np.median(timings["evaluation"][1:]))
  return {"stage": stage, "train_unrolls": len(train_lengths),
          "evaluation_steps": sum(eval_lengths),
          "evaluation_epochs": values["evaluation_epochs"],
          "build_s": build_seconds,
          "first_meta_iteration_s": (timings["train"][0] +
                                     timings["evaluation"][0]),
          "train_s": train_s, "train_unroll_s": train_s / len(train_lengths),
          "evaluation_s": evaluation_s,
          "s_per_meta_iteration": train_s + evaluation_s,
          "imitation_meta_iteration_s": timings["imitation"][-1],
          "last_evaluation": float(cost), "peak_rss_mib": peak_mib}


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


def report_curriculum(stages, repetitions):
  runs = _repeated([("curriculum", s) for s in stages], repetitions)
  print("The enhanced command's configuration (HierarchicalRNN, MNIST MLP, "
        "unrolls of 20 steps, %d evaluation trajectories) at curriculum "
        "stages %s, %d cores; median (min-max) of %d runs" % (
            runs[("curriculum", stages[0])][0]["evaluation_epochs"],
            ",".join(str(s) for s in stages), os.cpu_count(), repetitions))
  print("%-6s %7s %8s %20s %20s %20s %20s %20s %8s" % (
      "stage", "unrolls", "eval T", "train unroll s", "train s",
      "evaluation s", "s/meta-iteration", "imitation it s", "RSS MiB"))
  for stage in stages:
    rows = runs[("curriculum", stage)]
    print("%-6d %7d %8d %20s %20s %20s %20s %20s %8.0f" % (
        stage, rows[0]["train_unrolls"], rows[0]["evaluation_steps"],
        _spread(_stat(rows, "train_unroll_s"), "%.3f"),
        _spread(_stat(rows, "train_s"), "%.1f"),
        _spread(_stat(rows, "evaluation_s"), "%.1f"),
        _spread(_stat(rows, "s_per_meta_iteration"), "%.1f"),
        _spread(_stat(rows, "imitation_meta_iteration_s"), "%.1f"),
        _stat(rows, "peak_rss_mib")[0]))


def main():
  if len(sys.argv) >= 4 and sys.argv[1:3] == ["--child", "curriculum"]:
    print(json.dumps(measure_curriculum(int(sys.argv[3]))))
    return
  if len(sys.argv) >= 3 and sys.argv[1] == "--child":
    reg_option = sys.argv[3] if len(sys.argv) > 3 else "none"
    print(json.dumps(measure(int(sys.argv[2]), reg_option)))
    return
  repetitions = int(_option("repetitions", "1") or 1)
  stages = _option("curriculum", "2,4")
  if stages is not None:
    report_curriculum([int(s) for s in stages.split(",")], repetitions)
    return
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
