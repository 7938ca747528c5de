"""An evaluation campaign: every optimizer, grid point, problem and seed.

`run` evaluates what a `config.Campaign` says: for every selected problem,
every optimizer (evaluation/optimizers.py) and every point of its grid, a
fresh optimizee is trained on every seed (`runner.test_optimizer`); each
seed's losses go to the original's pickle file (and its measurements to a
JSON file beside it) as soon as it finishes; the grid point each optimizer
reports is chosen by `tuning.select`; at the end summary.json (statistics
per seed and over seeds), comparison.md (with several optimizers) and the
figures are written, and a table is printed.

Every setting, the checkpoint and the data are checked before anything is
written. The runs hold the lock of the output folder (one campaign per
folder). Files are written atomically, each seed's in a block that SIGINT
and SIGTERM do not interrupt, the files over all runs in one such block at
the end: an interrupted campaign leaves the files of an earlier complete
one as they were (except the seeds' files it rewrote). Two campaigns of the
same settings write the same pickles, bit for bit (except on the problem
sets with gradient noise, drawn unseeded as in the original).
"""

import collections
import contextlib
import json
import os
import sys

import numpy as np

from evaluation import metrics
from evaluation import optimizers as optimizers_lib
from evaluation import plot
from evaluation import report
from evaluation import runner
from evaluation import summary
from evaluation import tuning
from evaluation.config import LEARNED
from evaluation.config import SettingError
from problems import data_files
from problems import problem_sets
from problems import problem_spec
from run_control import atomic
from run_control import interrupts
from run_control import lock

# Samples per evaluated chunk of the measurements (bounded memory on conv
# nets).
CHUNK_SIZE = 10000
CONV_CHUNK_SIZE = 500
# The NumPy seed of the first problem's build (the next one's is one more).
FIRST_PROBLEM_SEED = 1000


class Problem(collections.namedtuple("Problem", [
    "label", "spec", "dataset", "batch_size", "splits", "conv"])):
  """One evaluation problem.

  `spec` builds it with a fixed NumPy seed; `dataset` is what the
  optimizee trains on; `splits` the held-out `datasets.Splits` or None;
  `conv` whether its set's networks are conv nets (the registry's fact).
  """


def problems(runs):
  """A `Problem` for every problem of the selected sets, in their order.

  Args:
    runs: a `config.Runs`; its `problem_sets` are stems of
      `problem_sets.EVALUATION_CHOICES`.

  Raises:
    SettingError: an unknown set, or one that cannot be built (naming its
      --include_<stem>_problems flag).
    data_files.DataNotFoundError, data_files.DataFileError: its data are
      missing or unreadable.
  """
  entries = []
  for stem in runs.problem_sets:
    if stem not in problem_sets.EVALUATION_CHOICES:
      raise SettingError("unknown problem set %s; known: %s" % (
          stem, ", ".join(problem_sets.EVALUATION_CHOICES)))
    problem_set = problem_sets.EVALUATION_CHOICES[stem]
    try:
      built = problem_set.problems(runs.data_dir)
    except data_files.DataFileError:
      raise  # A file's fault, not the setting's: reported as it is.
    except ValueError as e:
      raise SettingError("--%s: %s" % (problem_sets.flag_name(stem),
                                       e)) from None
    for i, (spec, dataset, batch_size) in enumerate(built):
      label = stem if len(built) == 1 else "%s_%d" % (stem, i)
      splits = dataset if problem_set.heldout else None
      # Every run rebuilds the problem in its own graph from the same NumPy
      # seed, so all optimizers and seeds see the same problem.
      seeded = problem_spec.Spec(runner.build_with_numpy_seed,
                                 (spec, FIRST_PROBLEM_SEED + len(entries)),
                                 {})
      entries.append(Problem(label, seeded,
                             splits.train if splits else dataset, batch_size,
                             splits, problem_set.conv))
  return entries


def measurement_options(measurements, problem, num_steps):
  """The runner's `metrics` and `curvature` arguments for `problem`.

  Args:
    measurements: a `config.Measurements`.
    problem: a `Problem`.
    num_steps: steps per run.

  Returns:
    (a `metrics.Config` for a held-out problem, else None; the keyword
    arguments of `flatness.measure` when the Hessian is measured, else
    None).
  """
  chunk = CONV_CHUNK_SIZE if problem.conv else CHUNK_SIZE
  metrics_config = None
  if problem.splits is not None:
    metrics_config = metrics.Config(
        splits=problem.splits._asdict(),
        every=(measurements.metrics_every or
               metrics.default_interval(num_steps)),
        subset=measurements.metrics_subset_size(problem.conv),
        chunk_size=chunk)
  curvature = None
  if measurements.hessian:
    curvature = {"lanczos_steps": measurements.lanczos_steps,
                 "num_probes": measurements.trace_probes,
                 "max_samples": measurements.hessian_samples(problem.conv),
                 "chunk_size": chunk}
  return metrics_config, curvature


def _describe_measurements(metrics_config, curvature, label, out):
  """One line saying what is measured besides the training losses."""
  parts = []
  if metrics_config is not None:
    parts.append(
        "loss and accuracy on %s every %d steps (%s) and on every sample "
        "after the last step" % (
            "/".join(metrics_config.splits), metrics_config.every,
            "each split on a fixed subset of at most %d samples" %
            metrics_config.subset if metrics_config.subset
            else "every sample"))
  if curvature is not None:
    parts.append(
        "after the last step the Hessian's top eigenvalue (%d Lanczos "
        "steps) and trace (%d probes) on %s" % (
            curvature["lanczos_steps"], curvature["num_probes"],
            "a fixed subset of %d training samples" % curvature["max_samples"]
            if curvature["max_samples"] else "the whole training data"))
  if parts:
    out.write("%s: measuring %s\n" % (label, "; ".join(parts)))


def optimizer_folder(output, optimizers, name):
  """The folder of optimizer `name`'s files: the output folder for the
  optimizer under test, <save_dir>/<name>/ for those compared with it."""
  if name == optimizers.test_optimizer:
    return output.save_dir
  return os.path.join(output.save_dir, name)


def record_file(folder, model_name, seed, label=None, grid_point=None):
  """The original's pickle name seed<seed>_eval_loss_record.pickle-<model>.

  With several problems the problem's `label` is appended, and for a grid
  of several points "-lr<point>", so that files do not overwrite each
  other.
  """
  name = "seed%d_eval_loss_record.pickle-%s" % (seed, model_name)
  if label is not None:
    name += "-" + label
  if grid_point is not None:
    name += "-lr" + grid_point.label.replace(":", "_")
  return os.path.join(folder, name)


def metrics_file(record_path):
  """The per-seed JSON file beside a pickle of `record_file`."""
  folder, name = os.path.split(record_path)
  return os.path.join(folder, name.replace("_eval_loss_record.pickle-",
                                           "_metrics-") + ".json")


@contextlib.contextmanager
def _locked(save_dir, holder):
  """A block holding the lock of `save_dir` (created if needed).

  Raises:
    SettingError: the folder cannot be created or locked.
    lock.LockError: another process holds the lock (the message names it).
  """
  try:
    os.makedirs(save_dir, exist_ok=True)
    held = lock.DirectoryLock(save_dir, holder).acquire()
  except OSError as e:
    raise SettingError("--save_dir: cannot create or lock %s (%s)" %
                       (save_dir, e.strerror or e)) from None
  try:
    yield
  finally:
    held.release()


def _make_output_folders(settings, out):
  """Creates the compared optimizers' sub-folders; clears leftovers.

  Call while holding the lock of the output folder: the temporary files
  that a killed run left in these folders are deleted (and named on `out`).

  Raises:
    SettingError: a folder cannot be created.
  """
  folders = [settings.output.save_dir]
  folders += [optimizer_folder(settings.output, settings.optimizers, name)
              for name in settings.optimizers.names
              if name != settings.optimizers.test_optimizer]
  removed = []
  try:
    for folder in folders:
      os.makedirs(folder, exist_ok=True)
      removed += [os.path.join(folder, name)
                  for name in atomic.remove_leftovers(folder)]
  except OSError as e:
    raise SettingError("--save_dir: cannot create %s (%s)" %
                       (folder, e.strerror or e)) from None
  if removed:
    out.write("removed %d temporary file%s of an interrupted run: %s\n" % (
        len(removed), "s" if len(removed) > 1 else "", ", ".join(removed)))


def _number(value, spec="%s"):
  """A number of summary.json's per-seed entry for the progress line; its
  null (a NaN or infinity: a diverged run) reads "non-finite"."""
  return "non-finite" if value is None else spec % value


def report_seed(out, stats, path):
  """Writes the line reporting a finished seed (`stats`: its summary.json
  entry; `path`: its pickle)."""
  line = "  final loss %s (last-100 mean %s), whole-data loss %s" % (
      _number(stats["final_loss"]), _number(stats["final_loss_last100"]),
      _number(stats["final_full_loss"]))
  heldout = stats.get("heldout")
  if heldout:
    line += ", validation loss %s, test loss %s, test accuracy %s" % (
        _number(heldout["validation_loss"], "%.5g"),
        _number(heldout["test_loss"], "%.5g"),
        _number(heldout["test_accuracy"], "%.4f"))
  curvature = stats.get("curvature")
  if curvature:
    line += ", top Hessian eigenvalue %s, trace %s" % (
        _number(curvature["top_eigenvalue"], "%.4g"),
        _number(curvature["trace"], "%.4g"))
  if not stats["finite"]:
    line += " (diverged: never chosen)"
  out.write("%s, %.2f ms/step -> %s\n" % (
      line, 1e3 * (stats["seconds_per_step"] or 0.), path))
  out.flush()


class RunInterrupted(Exception):
  """SIGINT or SIGTERM stopped the runs; str() is the line to print.

  Attributes:
    exit_status: 128 + the signal's number (130 or 143).
  """

  def __init__(self, interrupted, finished, total, written=False):
    if written:
      line = ("interrupted (%s) after all %d runs and their summary; every "
              "file is complete" % (interrupted, total))
    else:
      line = ("interrupted (%s) after %d of %d runs; the finished runs' "
              "files are complete, summary.json is left as it was (it is "
              "written at the end); rerun the same command to redo the rest"
              % (interrupted, finished, total))
    super().__init__(line)
    self.exit_status = interrupted.exit_status


def _selection_entry(problem, name, points, choice):
  return {"problem": problem, "optimizer": name, "rule": choice.rule,
          "grid": [p.label for p in points], "scores": choice.scores,
          "diverged": [p.label for p, score in zip(points, choice.scores)
                       if score is None],
          "chosen": (None if choice.chosen is None
                     else points[choice.chosen].label),
          "at_edge": choice.at_edge}


def _result_entry(name, problem_label, checkpoint, point, grid_size):
  return {"optimizer": name, "problem": problem_label,
          "checkpoint": checkpoint if name == LEARNED else None,
          "learning_rate": None if name == LEARNED else point.low,
          "initial_learning_rates": ([point.low, point.high]
                                     if name == LEARNED else None),
          "grid_point": point.label, "grid_size": grid_size, "chosen": False,
          "per_seed": []}


class _Campaign(object):
  """The runs of one campaign and what they produced.

  Attributes:
    results: summary.json's result entries, one per (problem, optimizer,
      grid point), in run order.
    test_runs: per result, its `runner.TestRun`s (one per seed).
    selection: summary.json's selection entries.
    warnings: lines repeated after the table.
    total: the number of runs (seeds x grid points x problems).
    finished: the runs whose files are written.
    written: whether summary.json and the other files over all runs are.
  """

  def __init__(self, settings, problem_list, grids, optimizer_settings,
               checkpoint, out):
    self._settings, self._out = settings, out
    self._problems, self._grids = problem_list, grids
    self._optimizer_settings = optimizer_settings
    self._checkpoint = checkpoint
    self.total = len(problem_list) * len(settings.runs.seeds) * sum(
        len(grids[name]) for name in settings.optimizers.names)
    self._started = 0
    self.results, self.test_runs, self.selection, self.warnings = [], [], [], []
    self.finished, self.written = 0, False

  def run(self):
    """Runs every problem, optimizer, grid point and seed; chooses."""
    for problem in self._problems:
      _describe_measurements(*self._measurements(problem), problem.label,
                             self._out)
      for name in self._settings.optimizers.names:
        points = self._grids[name]
        entries = [self._run_point(problem, name, point, len(points))
                   for point in points]
        self._choose(problem, name, points, entries)

  def _measurements(self, problem):
    return measurement_options(self._settings.measurements, problem,
                               self._settings.runs.num_steps)

  def _warn(self, line):
    self.warnings.append(line)
    self._out.write(line + "\n")

  def _run_point(self, problem, name, point, grid_size):
    """Every seed of optimizer `name` at `point` on `problem`."""
    result = _result_entry(name, problem.label, self._checkpoint, point,
                           grid_size)
    runs = []
    self.results.append(result)
    self.test_runs.append(runs)
    folder = optimizer_folder(self._settings.output, self._settings.optimizers,
                              name)
    for seed in self._settings.runs.seeds:
      self._started += 1
      self._out.write("[%d/%d] testing %s with %s%s using seed %d\n" % (
          self._started, self.total, problem.label, name,
          " (%s %s)" % ("initial learning rates" if name == LEARNED else
                        "learning rate", point.label) if grid_size > 1
          else "", seed))
      self._out.flush()
      path = record_file(
          folder, self._settings.output.model_name, seed,
          problem.label if len(self._problems) > 1 else None,
          point if grid_size > 1 else None)
      stats, test_run = self._evaluate(problem, name, point, seed, path)
      result["per_seed"].append(stats)
      runs.append(test_run)
      if test_run.metrics is not None:
        result["history"] = summary.aggregate_history(
            [r.metrics for r in runs])
    return result

  def _evaluate(self, problem, name, point, seed, path):
    """One test run; returns (its summary.json statistics, its TestRun).

    Its files (the pickle, the detailed records, the measurements' JSON)
    are written when it has finished, each atomically and all in a block
    that a SIGINT or SIGTERM does not interrupt (the signal is raised after
    it): a seed's files are there and complete, or not there.
    """
    runs, out = self._settings.runs, self._out
    metrics_config, curvature = self._measurements(problem)
    test_run = runner.test_optimizer(
        optimizers_lib.factory(name, self._optimizer_settings, seed, point),
        problem.spec, runs.num_steps, dataset=problem.dataset,
        batch_size=problem.batch_size, seed=seed,
        logdir=self._checkpoint if name == LEARNED else None,
        record_every=runs.record_every or None,
        options=runner.RunOptions(
            batch_rng=(np.random.RandomState(seed)
                       if runs.seed_batch_order else None),
            log=lambda line: (out.write(line + "\n"), out.flush()),
            log_every=runs.log_every, metrics=metrics_config,
            curvature=curvature))
    measured_file = None
    if test_run.metrics is not None or test_run.curvature is not None:
      measured_file = metrics_file(path)
    with interrupts.deferred():
      summary.write_loss_record(path, test_run.objective_values)
      if test_run.records:
        summary.write_pickle(path.replace("_eval_loss_record.", "_records."),
                             test_run.records)
      if measured_file is not None:
        summary.write_seed_metrics(
            measured_file, seed, test_run.metrics, test_run.final_metrics,
            test_run.curvature, test_run.metrics_subset)
      self.finished += 1
    save_dir = self._settings.output.save_dir
    relative = lambda p: p and os.path.relpath(p, save_dir)
    stats = summary.seed_statistics(
        seed, test_run.objective_values, test_run.final_objective,
        test_run.seconds_per_step, relative(path),
        heldout=test_run.final_metrics, curvature=test_run.curvature,
        metrics_file=relative(measured_file))
    report_seed(out, stats, path)
    return stats, test_run

  def _choose(self, problem, name, points, entries):
    """Marks the chosen grid point of `name` on `problem` (tuning.select)."""
    choice = tuning.select(points, [e["per_seed"] for e in entries],
                           problem.splits is not None)
    if choice.chosen is not None:
      entries[choice.chosen]["chosen"] = True
    self.selection.append(_selection_entry(problem.label, name, points,
                                           choice))
    warning = tuning.edge_warning(name, problem.label, points, choice,
                                  optimizers_lib.grid_flag(name))
    if warning:
      self._warn(warning)
    if choice.chosen is None:
      self._warn("warning: %s on %s: every grid point diverged" %
                 (name, problem.label))

  def write_results(self):
    """Prints the table; writes summary.json and the files over all runs.

    They are written in one block that SIGINT and SIGTERM do not interrupt,
    summary.json first; each file atomically.

    Returns:
      The summary.json path.
    """
    settings, out = self._settings, self._out
    names = settings.optimizers.names
    output = settings.output
    header = {
        "command": list(output.command),
        "model_name": output.model_name,
        "num_testing_itrs": settings.runs.num_steps,
        "seeds": list(settings.runs.seeds),
        "seed_batch_order": settings.runs.seed_batch_order,
        "loss_at_steps": summary.loss_steps(settings.runs.num_steps),
        "grids": {name: [p.label for p in self._grids[name]]
                  for name in names},
    }
    text = summary.json_text(summary.make_summary(header, self.results,
                                                  self.selection))
    # What a reader of summary.json gets (the table and comparison.md are
    # made from the file's content).
    document = json.loads(text)
    out.write("\n%s\n\n" % summary.table(document["results"]))
    for warning in self.warnings:
      out.write(warning + "\n")
    lines = []
    with interrupts.deferred():
      summary_path = summary.summary_path(output.save_dir)
      atomic.write_text(summary_path, text)
      lines.append("summary: %s" % summary_path)
      if len(names) > 1:
        lines.append("comparison: %s" % report.write_comparison(
            output.save_dir, document))
      if output.plot:
        lines += self._plot()
      self.written = True
    for line in lines:
      out.write(line + "\n")
    return summary_path

  def _plot(self):
    """Writes the figures; returns the lines reporting them."""
    if not plot.available():
      return ["plot: skipped (matplotlib is not installed)"]
    output = self._settings.output
    written = plot.campaign_figures(
        output.save_dir, output.model_name, self.results, self.test_runs,
        len(self._settings.runs.seeds),
        spectrum=self._settings.measurements.spectrum)
    return ["plot: %s" % path for path in written]


def run(settings, out=sys.stdout, holder="metatest.py"):
  """Evaluates as `settings` (a `config.Campaign`) say.

  Call with TensorFlow in graph mode (`graph_mode.enable()`, as the entry
  points do). The settings, the learned optimizer's checkpoint and the data
  are checked before anything is written; the runs then hold the lock of
  the output folder.

  Args:
    settings: a `config.Campaign`.
    out: progress and result stream.
    holder: the program named in the output folder's lock.

  Returns:
    The summary.json path.

  Raises:
    SettingError: a setting that cannot work (the message names its flag).
    lock.LockError: another process holds the lock of the output folder.
    data_files.DataNotFoundError, data_files.DataFileError: data missing or
      unreadable.
    checkpoints.CheckpointError: a checkpoint that cannot be read.
    RunInterrupted: SIGINT or SIGTERM (inside `interrupts.handling()`)
      after the runs started.
  """
  optimizers = settings.optimizers
  optimizer_settings = optimizers_lib.learned_settings(optimizers, out)
  checkpoint = None
  if LEARNED in optimizers.names:
    checkpoint = optimizers_lib.checkpoint(optimizers, optimizer_settings)
  grids = optimizers_lib.grids(optimizers, optimizer_settings, out)
  problem_list = problems(settings.runs)
  with _locked(settings.output.save_dir, holder):
    _make_output_folders(settings, out)
    campaign = _Campaign(settings, problem_list, grids, optimizer_settings,
                         checkpoint, out)
    try:
      campaign.run()
      return campaign.write_results()
    except interrupts.Interrupted as e:
      raise RunInterrupted(e, campaign.finished, campaign.total,
                           campaign.written) from None
