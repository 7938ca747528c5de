"""Running the study's stages: done-markers, resumption, progress and ETA.

A stage is finished when its folder holds `study_stage.json` (written
atomically after the command succeeded) with the same command line, and the
command's own output is complete (the variant's `model.ckpt-0`, or the
evaluation's `summary.json`). Anything else is run (again): `metarun.py`
resumes from its newest checkpoint, `metatest.py` redoes its seeds. So an
interrupted study reruns only what is missing or half-written, and nothing
the study writes is ever half a file.

Meta-training runs as a child process (`metarun.py` keeps its own lock,
resumption and interrupt handling); evaluations run in this process through
`metatest.run`, which saves a TensorFlow import and start per evaluation.
"""

import json
import os
import re
import subprocess
import sys
import time

from experiments import plan
from experiments import selection
import metatest
from optimizer import checkpoint_files
from optimizer import checkpoints
from problems import data_files
from run_control import atomic
from run_control import interrupts
from run_control import lock

MARKER = "study_stage.json"
TIME_FILE = "study_time.json"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOG_DIR = "logs"
# The log folder metarun.py writes below --train_dir (the default
# HierarchicalRNN settings: <optimizer>_<cell_cls>_<cell_size>_<num_cells>).
LOG_DIR_NAME = "HierarchicalRNN_GRUCell_20_2"


class StageFailed(RuntimeError):
  """A stage's command failed; the message names it and its log file."""


def marker_path(stage):
  return os.path.join(stage.folder, MARKER)


def read_marker(stage):
  """The stage's done-marker (a dict), or None when absent or unreadable."""
  try:
    with open(marker_path(stage)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def checkpoint_prefix(stage):
  """The best checkpoint a training stage writes."""
  return os.path.join(stage.folder, LOG_DIR_NAME, "model.ckpt-0")


def selected_prefix(stage):
  """The checkpoint a selection stage writes."""
  return os.path.join(os.path.dirname(stage.folder), LOG_DIR_NAME,
                      plan.SELECTED_CHECKPOINT)


def output_complete(stage):
  """Whether the command's own output of `stage` is there and whole."""
  if stage.kind == "train":
    return checkpoint_files.is_complete(checkpoint_prefix(stage))
  if stage.kind == "select":
    return (selection.read(stage.folder) is not None and
            checkpoint_files.is_complete(selected_prefix(stage)))
  try:
    with open(os.path.join(stage.folder, "summary.json")) as f:
      json.load(f)
  except (OSError, ValueError):
    return False
  return True


def is_done(stage):
  marker = read_marker(stage)
  return (marker is not None and marker.get("argv") == stage.argv and
          output_complete(stage))


def seconds_spent(stage):
  """Wall seconds of the stage's finished command (None if not done)."""
  marker = read_marker(stage)
  return None if marker is None else marker.get("seconds")


# Rough seconds of each kind of work on a 2-core machine, for the first ETA;
# later ETAs scale them by what the finished stages took.
_META_ITERATION_S = 5.0
_HESSIAN_FACTOR = 1.6
_CURRICULUM_FACTOR = 2.0
_STEP_MS = {(True, False): 6.0, (True, True): 20.0, (False, False): 1.5,
            (False, True): 10.0}
_RUN_OVERHEAD_S = 4.0
_START_S = 10.0


def estimate_seconds(stage, budget):
  """An a-priori cost of `stage` (seconds), used for the ETA."""
  if stage.kind == "train":
    flags = dict(a[2:].split("=", 1) for a in stage.argv if "=" in a)
    cost = budget.meta_iterations * _META_ITERATION_S
    if flags.get("regularize_time") == "always":
      cost *= _HESSIAN_FACTOR
    if flags.get("if_cl") == "True":
      cost *= _CURRICULUM_FACTOR * budget.curriculum_stages
    return cost + _START_S
  if stage.kind == "select":
    runs = budget.meta_iterations // budget.selection_every + 2
    return runs * (_START_S + 2 * len(budget.selection_seeds) * (
        budget.selection_steps * _STEP_MS[(True, False)] / 1000. +
        _RUN_OVERHEAD_S))
  evaluation_set = {e.name: e for e in plan.ALL_EVALUATION_SETS}[
      stage.evaluation_set]
  learned = stage.variant not in {b.name for b in plan.BASELINES}
  points = (1 + len(budget.init_lr_grid) if learned
            else len(budget.learning_rates))
  per_run = (budget.steps(evaluation_set) *
             _STEP_MS[(learned, evaluation_set.conv)] / 1000. +
             _RUN_OVERHEAD_S)
  return _START_S + points * len(budget.seeds) * per_run


def _duration(seconds):
  seconds = int(round(seconds))
  if seconds < 60:
    return "%ds" % seconds
  if seconds < 3600:
    return "%dm%02ds" % divmod(seconds, 60)
  hours, rest = divmod(seconds, 3600)
  return "%dh%02dm" % (hours, rest // 60)


class Progress(object):
  """Prints a line per stage: k/N, what it is, elapsed and ETA."""

  def __init__(self, all_stages, budget, out):
    self.todo = [s for s in all_stages if not is_done(s)]
    self.total = len(all_stages)
    self.done = self.total - len(self.todo)
    self.budget = budget
    self.out = out
    self.start = time.time()
    self.estimated_done = 0.
    self.measured_done = 0.

  def _eta(self, remaining):
    estimate = sum(estimate_seconds(s, self.budget) for s in remaining)
    if self.estimated_done > 0:
      estimate *= self.measured_done / self.estimated_done
    return estimate

  def starting(self, stage, remaining):
    self.out.write("[%d/%d] %s  (elapsed %s, ETA %s)\n" % (
        self.done + 1, self.total, stage.name,
        _duration(time.time() - self.start), _duration(self._eta(remaining))))
    self.out.flush()

  def skipped(self, stage):
    self.out.write("[done] %s (its output is complete)\n" % stage.name)

  def finished(self, stage, seconds):
    self.done += 1
    self.estimated_done += estimate_seconds(stage, self.budget)
    self.measured_done += seconds
    self.out.write("       %s: %s\n" % (stage.name, _duration(seconds)))
    self.out.flush()


class _Tee(object):
  """Writes to a log file and, indented, to the study's output."""

  def __init__(self, log, out, prefix="    | "):
    self.log, self.out, self.prefix = log, out, prefix
    self._pending = ""

  def write(self, text):
    self.log.write(text)
    self._pending += text
    *lines, self._pending = self._pending.split("\n")
    for line in lines:
      self.out.write(self.prefix + line + "\n")
    if lines:
      # Seen as it happens even when the study's output is a file or pipe
      # (block-buffered there).
      self.out.flush()

  def flush(self):
    self.log.flush()
    self.out.flush()


def _log_path(study_dir, stage):
  name = re.sub(r"[^A-Za-z0-9._-]+", "_", stage.name.replace("+", "-"))
  return os.path.join(study_dir, LOG_DIR, name + ".log")


def _run_training(stage, tee):
  """Runs metarun.py as a child process; returns its exit status.

  The child has its own session, so a terminal's Ctrl-C reaches it only
  through this process, which passes SIGINT or SIGTERM on and waits for the
  child to save its checkpoint and exit.
  """
  command = [sys.executable, os.path.join(ROOT, "metarun.py")] + stage.argv
  tee.write("$ %s\n" % " ".join(command))
  with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True,
                        start_new_session=True) as child:
    try:
      for line in child.stdout:
        tee.write(line)
      return child.wait()
    except interrupts.Interrupted as e:
      with interrupts.deferred():
        if child.poll() is None:
          child.send_signal(e.signum)
        for line in child.stdout:
          tee.write(line)
        child.wait()
      raise


def _run_evaluation(stage, tee):
  """Runs metatest.run in this process; returns its exit status."""
  return _metatest(stage.argv, tee)


def _run_selection(stage, tee):
  """Scores a run's checkpoints and keeps the best (experiments/selection.py);
  returns 0, or 1 with the reason on `tee`."""
  argv, every = selection.split_argv(stage.argv)
  log_dir = os.path.dirname(selected_prefix(stage))
  try:
    selection.select(log_dir, stage.folder, argv, every, _metatest, tee)
  except (selection.SelectionError, checkpoint_files.CheckpointError) as e:
    tee.write("selection: %s\n" % e)
    return 1
  return 0


def _metatest(argv, tee):
  """Runs metatest.run with `argv` in this process; returns 0, or 1 with
  the error on `tee`."""
  tee.write("$ metatest.py %s\n" % " ".join(argv))
  values, explicit = metatest.parse_flags(["metatest.py"] + argv)
  try:
    # summary.json records the command that produced it.
    metatest.run(values, explicit, out=tee,
                 command=[os.path.join(ROOT, "metatest.py")] + argv)
  except metatest.RunInterrupted as e:
    raise interrupts.Interrupted(e.exit_status - 128) from None
  except (metatest.FlagError, lock.LockError, data_files.DataNotFoundError,
          data_files.DataFileError, checkpoints.CheckpointError) as e:
    tee.write("metatest.py: %s\n" % e)
    return 1
  return 0


def run(stage, study_dir, out):
  """Runs `stage` and writes its done-marker; returns its wall seconds.

  Raises:
    StageFailed: the command exited with an error.
    interrupts.Interrupted: SIGINT or SIGTERM (the command stopped cleanly;
      no marker is written, so a rerun redoes or resumes the stage).
  """
  log_path = _log_path(study_dir, stage)
  os.makedirs(os.path.dirname(log_path), exist_ok=True)
  os.makedirs(stage.folder, exist_ok=True)
  # A resumed meta-training's wall time includes its interrupted attempts.
  time_path = os.path.join(stage.folder, TIME_FILE)
  spent = 0.
  if stage.kind == "train" and os.path.exists(time_path):
    with open(time_path) as f:
      spent = json.load(f)["seconds"]
  start = time.time()
  try:
    # Appended to, never rewritten, and written line by line: a killed
    # attempt's output (even a SIGKILL of the study) stays above the rerun's.
    with open(log_path, "a", buffering=1) as log:
      log.write("# attempt started %s\n" % time.strftime("%Y-%m-%d %H:%M:%S"))
      tee = _Tee(log, out)
      runner = {"train": _run_training, "select": _run_selection,
                "evaluate": _run_evaluation}[stage.kind]
      status = runner(stage, tee)
      tee.flush()
  finally:
    seconds = spent + time.time() - start
    if stage.kind == "train":
      with interrupts.deferred():
        atomic.write_json(time_path, {"seconds": seconds})
  if status != 0 or not output_complete(stage):
    raise StageFailed("%s failed (exit status %s); its output is in %s" %
                      (stage.name, status, log_path))
  previous = read_marker(stage) or {}
  atomic.write_json(marker_path(stage), {
      "stage": stage.name, "program": stage.program, "argv": stage.argv,
      "seconds": seconds, "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
      "attempts": previous.get("attempts", 0) + 1})
  return seconds


