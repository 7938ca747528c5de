"""Benchmark: the cost of held-out metrics and Hessian estimates in evaluation.

For the Fashion-MNIST held-out sets (ReLU MLP 784-20-10 and the conv net,
batch 128), times whole `evaluation.runner.test_optimizer` runs of
--steps steps three ways, alternating within each repetition:
  plain:     no measurements (as the original sets run);
  metrics:   loss and accuracy on the training, validation and test
             splits at metatest's default interval (about 50 points, on
             fixed subsets) and on every sample after the last step;
  hessian:   plain plus the top eigenvalue and trace of the final solution
             (metatest's defaults).
and reports the medians and the ratios metrics / plain and hessian / plain
(wall time of the whole call: graph, session, steps and measurements).
The metrics runs also time, inside the run, the recordings and the steps
(interleaved, so a machine whose load changes during the benchmark affects
both alike) and report recording seconds / step seconds.
Needs Fashion-MNIST (Debian's dataset-fashion-mnist, which `make test`
installs).

Usage:
  python bench/heldout_metrics_bench.py [--steps=10000] [--repetitions=3]
      [--models=mlp,conv] [--optimizers=Adam,L2o]
      [--kinds=plain,metrics,hessian]
  (--kinds=metrics alone measures the in-run ratio, which is what a shared
  machine can still measure)
"""

import argparse
import contextlib
import json
import os
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)

MODELS = {"mlp": "fashion_mnist_mlp_relu_heldout",
          "conv": "fashion_mnist_conv_heldout"}


def _problem(stem):
  """metatest.py's problem entry of held-out set `stem`."""
  from evaluation import campaign  # pylint: disable=g-import-not-at-top
  from evaluation import config  # pylint: disable=g-import-not-at-top
  from problems import data_files  # pylint: disable=g-import-not-at-top
  try:
    return campaign.problems(config.Runs(problem_sets=(stem,)))[0]
  except data_files.DataNotFoundError as e:
    raise SystemExit("heldout_metrics_bench.py: %s" % e) from None


def _one_run(kind, optimizer_name, problem, steps):
  """Seconds of one test_optimizer call with metatest's measurements."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from evaluation import campaign  # pylint: disable=g-import-not-at-top
  from evaluation import config  # pylint: disable=g-import-not-at-top
  from evaluation import metrics  # pylint: disable=g-import-not-at-top
  from evaluation import optimizers  # pylint: disable=g-import-not-at-top
  from evaluation import runner  # pylint: disable=g-import-not-at-top
  from evaluation import tuning  # pylint: disable=g-import-not-at-top
  from optimizer import settings  # pylint: disable=g-import-not-at-top
  metrics_config, curvature = campaign.measurement_options(
      config.Measurements(), problem, steps)
  if kind != "metrics":
    metrics_config = None
  if kind != "hessian":
    curvature = None
  optimizer_values = settings.complete({})
  point = (tuning.point(optimizer_values["min_lr"], optimizer_values["max_lr"])
           if optimizer_name == config.LEARNED else tuning.point(1e-3))
  factory = optimizers.factory(optimizer_name, optimizer_values, 6, point)
  recording = []
  started = time.perf_counter()
  with _timed(metrics.SplitMetrics, ("record", "final"), recording):
    result = runner.test_optimizer(
        factory, problem.spec, steps, dataset=problem.dataset,
        batch_size=problem.batch_size, seed=6,
        options=runner.RunOptions(batch_rng=np.random.RandomState(6),
                                  metrics=metrics_config,
                                  curvature=curvature))
  return (time.perf_counter() - started, sum(recording),
          float(np.sum(result.seconds_per_step)))


@contextlib.contextmanager
def _timed(cls, method_names, seconds):
  """Appends the wall time of every call of `cls`'s methods to `seconds`."""
  originals = {name: getattr(cls, name) for name in method_names}

  def timing(original):
    def method(*args, **kwargs):
      tic = time.perf_counter()
      try:
        return original(*args, **kwargs)
      finally:
        seconds.append(time.perf_counter() - tic)
    return method

  for name, original in originals.items():
    setattr(cls, name, timing(original))
  try:
    yield
  finally:
    for name, original in originals.items():
      setattr(cls, name, original)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=10000)
  parser.add_argument("--repetitions", type=int, default=3)
  parser.add_argument("--models", default="mlp,conv")
  parser.add_argument("--optimizers", default="Adam,L2o")
  parser.add_argument("--kinds", default="plain,metrics,hessian",
                      help="which of plain, metrics, hessian to time (the "
                      "wall-time ratios need plain)")
  args = parser.parse_args()
  import graph_mode  # pylint: disable=g-import-not-at-top
  graph_mode.enable()
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  tf.logging.set_verbosity(tf.logging.ERROR)
  kinds = [k for k in ("plain", "metrics", "hessian")
           if k in args.kinds.split(",")]
  results = []
  for model in args.models.split(","):
    problem = _problem(MODELS[model])
    for name in args.optimizers.split(","):
      times = {kind: [] for kind in kinds}
      in_run = []
      for repetition in range(args.repetitions):
        for kind in kinds:
          seconds, recording, stepping = _one_run(kind, name, problem,
                                                  args.steps)
          times[kind].append(seconds)
          note = ""
          if kind == "metrics":
            in_run.append(recording / stepping)
            note = "  (recordings %.1f s, steps %.1f s: x%.3f)" % (
                recording, stepping, in_run[-1])
          print("%s %s rep %d/%d %-8s %.1f s%s" % (
              model, name, repetition + 1, args.repetitions, kind, seconds,
              note), flush=True)
      median = {kind: float(np.median(v)) for kind, v in times.items()}
      row = {"model": model, "optimizer": name, "steps": args.steps,
             "seconds": times, "median_seconds": median}
      line = "%s %s: %s" % (model, name, ", ".join(
          "%s %.1f s" % (kind, median[kind]) for kind in kinds))
      for kind in kinds[1:] if "plain" in kinds else ():
        # Ratios of the runs of one repetition (run back to back).
        ratios = [t / p for t, p in zip(times[kind], times["plain"])]
        row["ratio_" + kind] = float(np.median(ratios))
        row["ratio_%s_range" % kind] = [min(ratios), max(ratios)]
        line += "; %s / plain x%.3f (%.3f-%.3f)" % (
            kind, row["ratio_" + kind], min(ratios), max(ratios))
      if in_run:
        row["recording_over_steps"] = in_run
        line += "; recordings / steps in the run x%.3f (%.3f-%.3f)" % (
            float(np.median(in_run)), min(in_run), max(in_run))
      results.append(row)
      print(line, flush=True)
  print(json.dumps(results, indent=1))


if __name__ == "__main__":
  main()
