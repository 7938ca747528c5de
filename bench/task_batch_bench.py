"""Benchmark: meta-training with batches of K tasks per meta-update (issue 30).

Part "tasks": optimizee steps per second of meta-training HierarchicalRNN
(the default flags) with K = 1, 4, 8, 16 tasks per meta-update, for the
`truncated_backprop` and `es` estimators, with unrolls of 20 steps, on

  mlp        the MNIST MLP meta-training problem (784-20-10 sigmoid, batch
             128; `problem_sets.mnist_mlp_problems()[0]`), and
  quadratic  a 20-dimensional quadratic (the size of the first problem of
             the default synthetic set, `problem_sets.quadratic_problems`;
             seeded), where the per-run overhead dominates.

A meta-update is what the loop (`meta_training/loop.py` `_meta_iteration`)
does for one partial unroll: read every task's mini-dataset for the unroll,
then `graph.estimator.run` on all K tasks (the loop's fetches: summaries,
global step, each task's objectives), carrying the states on. Each task runs
one trajectory of partial unrolls of T steps from its own initial parameters
and data. ES runs with `es_pairs` = 2 (not the default 8), so that K = 16
stays affordable: a meta-update is one run of the K starts, 2 pair runs of
2K forward-only unrolls each, one run of the K main unrolls and the update
run.

  task steps/s = K x T / (seconds per meta-update),

the tasks' trajectory steps advanced per second. ES also runs 2N perturbed
copies of every task's partial unroll, so it takes (2N + 1) K T optimizee
steps per meta-update ("all steps/s"). Steady state: one untimed meta-update
(executor preparation, XLA compilation; its seconds are shown as "first s"),
then --iterations timed ones. The ratio to K = 1 is that of the medians; the
issue's goal is K = 8 at least 2.5 times K = 1. Graph-build seconds and peak
RSS are per child process.

Part "bound": K = 1 again, on one core (CPU affinity), and the most a
batch of K tasks could gain on this machine if the tasks share no
arithmetic: C cores x (one-core task steps/s) / (all-core task steps/s at
K = 1), beside the measured K = 8 ratio.

Part "memory": peak RSS of meta-training against the unroll length (10, 20,
40, 80) for the two estimators at K = 1 on the MNIST MLP, and its
least-squares slope in MiB per unroll step. Backprop keeps every step's
forward values for the backward pass; ES is forward-only.

Each measurement runs in its own child process (peak RSS is per
measurement). With --repetitions=N every child runs N times, interleaved;
the tables show medians and the spread (min-max).

Usage:
  L2O_DATA_DIR=<folder with mnist/> python bench/task_batch_bench.py
  ... --parts=tasks (or bound, memory) --problems=quadratic --estimators=es
      --tasks=1,8 --lengths=10,80 --iterations=5 --repetitions=2
  ... --child mlp es 8 20 3 [1]
      (one measurement: problem, estimator, K, unroll length, timed
      meta-updates, optionally the cores it may use; prints its JSON)
"""

import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)

PARTS = ("tasks", "bound", "memory")
PROBLEMS = ("mlp", "quadratic")
ESTIMATORS = ("truncated_backprop", "es")
TASKS = (1, 4, 8, 16)
LENGTH = 20
LENGTHS = (10, 20, 40, 80)
# A quadratic's meta-update takes tens of milliseconds: more of them.
ITERATIONS = {"mlp": 3, "quadratic": 10}
ES_PAIRS = 2
ES_SIGMA = 0.01
QUADRATIC_SIZE = 20
GOAL_TASKS, GOAL_RATIO = 8, 2.5


def _problem_entry(problem):
  """(Spec, training data or None, batch size) of `problem`."""
  from meta_training import data as data_lib  # pylint: disable=g-import-not-at-top
  from problems import problem_generator as pg  # pylint: disable=g-import-not-at-top
  from problems import problem_sets  # pylint: disable=g-import-not-at-top
  from problems import problem_spec  # pylint: disable=g-import-not-at-top
  if problem == "mlp":
    spec, dataset, batch_size = problem_sets.mnist_mlp_problems()[0]
    train, _ = data_lib.training_parts(dataset, "train", spec)
    return spec, train, batch_size
  spec = problem_spec.Spec(pg.Quadratic, (QUADRATIC_SIZE,), {"random_seed": 0})
  return spec, None, None


def measure(problem, estimator, num_tasks, length, iterations, cores=0):
  """Builds the meta-graph of K tasks and times its meta-updates.

  Args:
    problem: one of PROBLEMS.
    estimator: the gradient estimator's name.
    num_tasks: K, tasks per meta-update.
    length: unroll length T.
    iterations: timed meta-updates (after one untimed one).
    cores: if > 0, the process runs on this many cores only (its CPU
      affinity, set before TensorFlow starts); 0: every core.

  Returns:
    A JSON-able dict of the measurement.
  """
  if cores:
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:cores]))
  import graph_mode  # pylint: disable=g-import-not-at-top
  graph_mode.enable()
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  import metarun  # pylint: disable=g-import-not-at-top
  from meta_training import config as meta_config  # pylint: disable=g-import-not-at-top
  from meta_training import data as data_lib  # pylint: disable=g-import-not-at-top
  from meta_training import graph as graph_lib  # pylint: disable=g-import-not-at-top
  tf.logging.set_verbosity(tf.logging.ERROR)
  values = {name: metarun.FLAGS[name].default for name in metarun.FLAGS}
  spec, dataset, batch_size = _problem_entry(problem)
  mini_batch_size = meta_config.Data().mini_batch_size
  settings = meta_config.MetaOptimizer(
      learning_rate=1e-6, gradient_clip=1e4, gradient_estimator=estimator,
      num_tasks=num_tasks, es_pairs=ES_PAIRS, es_sigma=ES_SIGMA)
  rng = np.random.RandomState(0)
  tick = time.time()
  with tf.Graph().as_default() as graph_obj:
    tf.set_random_seed(0)
    graph = graph_lib.build_meta_graph(spec, metarun.optimizer_spec(values),
                                       settings)
    init = tf.group(tf.global_variables_initializer(),
                    tf.local_variables_initializer())
  build_seconds = time.time() - tick
  graph_obj.finalize()
  num_ops = len(graph_obj.get_operations())
  outs = graph.task_outputs
  lengths = [length] * (iterations + 1)
  starts = [data_lib.initial_parameters(graph.problem, rng)
            for _ in range(num_tasks)]
  data = [data_lib.unroll_data(dataset, batch_size, lengths, mini_batch_size,
                               False, rng) for _ in range(num_tasks)]
  fetches = {"summary": graph.summary_op, "step": graph.global_step}
  for task, out in enumerate(outs):
    fetches["objectives/%d" % task] = out.problem_objectives
    fetches["initial/%d" % task] = out.initial_objective
  times, cpu_times, data_times, objectives = [], [], [], []
  with tf.Session(graph=graph_obj) as sess:
    sess.run(init)
    graph.problem.init_fn(sess)
    for unroll in range(len(lengths)):
      tick, cpu_tick = time.time(), time.process_time()
      current = [task_data[unroll] for task_data in data]
      data_times.append(time.time() - tick)

      def feed_for(out, task, unroll=unroll, current=current):
        return data_lib.feed(out, starts[task], lengths, unroll,
                             current[task], unroll == 0)

      result = graph.estimator.run(sess, feed_for, imitating=False,
                                   carry=True, fetches=fetches)
      times.append(time.time() - tick)
      cpu_times.append(time.process_time() - cpu_tick)
      objectives.append(float(result["meta_objective"]))
  peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.
  seconds = float(np.median(times[1:]))
  return {"problem": problem, "estimator": estimator, "tasks": num_tasks,
          "length": length, "iterations": iterations, "cores": cores,
          "mini_dataset": (min(mini_batch_size, dataset.size)
                           if dataset is not None else 0),
          "build_s": build_seconds, "ops": num_ops,
          "first_s": times[0], "seconds": seconds,
          "timed_s": times[1:],
          "data_s": float(np.median(data_times[1:])),
          "cores_busy": float(np.median(np.divide(cpu_times[1:],
                                                  times[1:]))),
          "task_steps_per_s": num_tasks * length / seconds,
          "finite": bool(np.all(np.isfinite(objectives))),
          "peak_rss_mib": peak_mib}


def _child(*args):
  """Runs `measure(*args)` in a child process; returns its dict."""
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
  """The value of --name=value, `default` for a bare --name, else None."""
  for arg in sys.argv[1:]:
    if arg == "--" + name:
      return default
    if arg.startswith("--%s=" % name):
      return arg.split("=", 1)[1]
  return None


def _list_option(name, default, choices=None, kind=str):
  value = _option(name, None)
  if value is None:
    return list(default)
  items = [kind(v) for v in value.split(",")]
  unknown = [str(v) for v in items if choices and v not in choices]
  if unknown:
    sys.exit("unknown --%s %s; expected some of %s" %
             (name, ",".join(unknown), ",".join(str(c) for c in choices)))
  return items


def _machine():
  """The CPU model, cores, memory and Python version."""
  model = platform.machine()
  with open("/proc/cpuinfo") as cpuinfo:
    for line in cpuinfo:
      if line.startswith("model name"):
        model = line.split(":", 1)[1].strip()
        break
  memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2.**30
  return "%s, %d cores, %.0f GiB, Python %s, load average %.1f at the end" % (
      model, os.cpu_count(), memory, platform.python_version(),
      os.getloadavg()[0])


def report_tasks(runs, problems, estimators, tasks, iterations, repetitions):
  """Prints the steps-per-second table of each problem and the goal."""
  names = {"mlp": "MNIST MLP 784-20-10 sigmoid, batch 128",
           "quadratic": "quadratic, %d dimensions" % QUADRATIC_SIZE}
  for problem in problems:
    first = runs[(problem, estimators[0], tasks[0], LENGTH,
                  iterations[problem])][0]
    extra = (", mini-dataset %d samples" % first["mini_dataset"]
             if first["mini_dataset"] else "")
    print("\n%s%s; HierarchicalRNN (defaults), unroll %d, es with %d pairs; "
          "%d timed meta-updates after one untimed; median (min-max) of %d "
          "runs" % (names[problem], extra, LENGTH, ES_PAIRS,
                    iterations[problem], repetitions))
    print("%-18s %3s %18s %6s %7s %22s %7s %6s %20s %6s %9s %8s" % (
        "estimator", "K", "build s", "ops", "first s", "s/meta-update",
        "data s", "cores", "task steps/s", "vs K=1", "all st/s", "RSS MiB"))
    for estimator in estimators:
      base = None
      for num_tasks in tasks:
        rows = runs[(problem, estimator, num_tasks, LENGTH,
                     iterations[problem])]
        rate = _stat(rows, "task_steps_per_s")
        base = rate[0] if base is None else base
        copies = 2 * ES_PAIRS + 1 if estimator == "es" else 1
        finite = all(r["finite"] for r in rows)
        print("%-18s %3d %18s %6d %7.1f %22s %7.3f %6.2f %20s %6.2f %9.0f "
              "%8.0f%s" % (
                  estimator, num_tasks,
                  _spread(_stat(rows, "build_s"), "%.1f"), rows[0]["ops"],
                  _stat(rows, "first_s")[0],
                  _spread(_stat(rows, "seconds"), "%.3f"),
                  _stat(rows, "data_s")[0], _stat(rows, "cores_busy")[0],
                  _spread(rate, "%.0f"), rate[0] / base, rate[0] * copies,
                  _stat(rows, "peak_rss_mib")[0],
                  "" if finite else "  non-finite objectives!"))
    if tasks[0] == 1 and GOAL_TASKS in tasks:
      for estimator in estimators:
        ratio = [_stat(runs[(problem, estimator, k, LENGTH,
                             iterations[problem])], "task_steps_per_s")[0]
                 for k in (1, GOAL_TASKS)]
        ratio = ratio[1] / ratio[0]
        print("goal, %s %s: K=%d gives %.2fx the task steps/s of K=1 "
              "(goal >= %.1fx): %s" % (
                  problem, estimator, GOAL_TASKS, ratio, GOAL_RATIO,
                  "met" if ratio >= GOAL_RATIO else "NOT met"))


def report_bound(runs, problems, estimators, iterations, repetitions):
  """Prints the most K tasks could gain over K = 1 from the machine's cores.

  K tasks that share no arithmetic take K times the floating-point work of
  one, so on C cores their task steps/s is at most C times that of one task
  on one core (perfect parallel scaling and no per-op overhead left).
  Divided by K = 1's measured rate on all C cores, that is the largest
  "vs K = 1" ratio any layout of the K tasks (copies, parallel runs or a
  vectorised unroll) can reach here, unless the tasks share work.
  """
  cores = len(os.sched_getaffinity(0))
  print("\nThe most K tasks can gain on %d cores without shared arithmetic: "
        "%d x (K = 1 on one core) / (K = 1 on %d cores); median of %d runs" %
        (cores, cores, cores, repetitions))
  print("%-10s %-18s %14s %14s %10s %12s %12s" % (
      "problem", "estimator", "1 core st/s", "%d cores st/s" % cores,
      "K=1 cores", "bound vs K=1", "K=%d vs K=1" % GOAL_TASKS))
  for problem in problems:
    for estimator in estimators:
      key = (problem, estimator, 1, LENGTH, iterations[problem])
      one = _stat(runs[key + (1,)], "task_steps_per_s")[0]
      every = _stat(runs[key], "task_steps_per_s")[0]
      batch = _stat(runs[(problem, estimator, GOAL_TASKS, LENGTH,
                          iterations[problem])], "task_steps_per_s")[0]
      print("%-10s %-18s %14.1f %14.1f %10.2f %12.2f %12.2f" % (
          problem, estimator, one, every,
          _stat(runs[key], "cores_busy")[0], cores * one / every,
          batch / every))


def report_memory(runs, estimators, lengths, iterations, repetitions):
  """Prints peak RSS against the unroll length and its slope."""
  print("\nPeak RSS against the unroll length, K = 1, MNIST MLP; "
        "%d timed meta-updates after one untimed; median (min-max) of %d "
        "runs" % (iterations, repetitions))
  print("%-18s %6s %22s %20s %8s" % ("estimator", "unroll", "s/meta-update",
                                     "RSS MiB", "vs first"))
  for estimator in estimators:
    rss = []
    for length in lengths:
      rows = runs[("mlp", estimator, 1, length, iterations)]
      stat = _stat(rows, "peak_rss_mib")
      rss.append(stat[0])
      print("%-18s %6d %22s %20s %8.2f" % (
          estimator, length, _spread(_stat(rows, "seconds"), "%.3f"),
          _spread(stat, "%.0f"), stat[0] / rss[0]))
    if len(lengths) > 1:
      print("%-18s peak RSS slope: %.2f MiB per unroll step (least squares "
            "over lengths %s)" % (estimator, np.polyfit(lengths, rss, 1)[0],
                                  ", ".join(str(x) for x in lengths)))


def main():
  if len(sys.argv) in (7, 8) and sys.argv[1] == "--child":
    problem, estimator = sys.argv[2:4]
    print(json.dumps(measure(problem, estimator, *map(int, sys.argv[4:]))))
    return
  parts = _list_option("parts", PARTS, PARTS)
  problems = _list_option("problems", PROBLEMS, PROBLEMS)
  estimators = _list_option("estimators", ESTIMATORS)
  tasks = _list_option("tasks", TASKS, kind=int)
  lengths = _list_option("lengths", LENGTHS, kind=int)
  repetitions = int(_option("repetitions", "1") or 1)
  iterations = dict(ITERATIONS)
  if _option("iterations", None):
    iterations = {p: int(_option("iterations", None)) for p in PROBLEMS}
  configs = []
  if "tasks" in parts:
    configs += [(p, e, k, LENGTH, iterations[p]) for p in problems
                for e in estimators for k in tasks]
  if "bound" in parts:
    configs += [(p, e, 1, LENGTH, iterations[p], 1) for p in problems
                for e in estimators]
    configs += [(p, e, k, LENGTH, iterations[p]) for p in problems
                for e in estimators for k in (1, GOAL_TASKS)
                if (p, e, k, LENGTH, iterations[p]) not in configs]
  if "memory" in parts:
    # The K = 1, T = 20 run of the MLP serves both parts.
    configs += [("mlp", e, 1, length, iterations["mlp"]) for e in estimators
                for length in lengths
                if ("mlp", e, 1, length, iterations["mlp"]) not in configs]
  tick = time.time()
  runs = _repeated(configs, repetitions)
  print("%s; %d child processes in %.0f s" % (_machine(), len(configs) *
                                              repetitions, time.time() - tick))
  if "tasks" in parts:
    report_tasks(runs, problems, estimators, tasks, iterations, repetitions)
  if "bound" in parts:
    report_bound(runs, problems, estimators, iterations, repetitions)
  if "memory" in parts:
    report_memory(runs, estimators, lengths, iterations["mlp"], repetitions)


if __name__ == "__main__":
  main()
