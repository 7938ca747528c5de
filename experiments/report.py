"""The study's report: one table per evaluation set, from the runs' files.

Every number comes from the files the stages wrote: each evaluation's
`summary.json` (its chosen grid point and per-seed entries), the per-seed
loss records for the curves, and the training stages' done-markers for the
meta-training wall time. `collect` gathers them into a plain dict (written
as `report.json` next to `report.md`), `markdown` renders it.
"""

import os
import pickle

import numpy as np

from experiments import meta_parameters
from experiments import plan
from experiments import stages as stages_lib
from evaluation import plot
from evaluation import summary

REPORT_FILE = "report.md"
REPORT_JSON = "report.json"
# The training-loss steps reported (those the run reached).
LOSS_STEPS = (100, 1000)


def _stats(values):
  """Mean, std (over seeds, ddof 0 as summary.json) and count; None if no
  finite value."""
  values = np.array([v for v in values if v is not None], dtype=np.float64)
  if not len(values):
    return None
  return {"mean": float(np.mean(values)), "std": float(np.std(values)),
          "count": int(len(values))}


def chosen_result(document):
  """The result of the chosen grid point in a summary.json document."""
  results = document["results"]
  chosen = [r for r in results if r.get("chosen")]
  return chosen[0] if chosen else results[0]


def _row(stage, study_dir):
  """The table row of an evaluation stage (None if it has not finished)."""
  if not stages_lib.is_done(stage):
    return None
  document = summary.read_summary(stage.folder)
  result = chosen_result(document)
  seeds = result["per_seed"]
  row = {"name": stage.variant, "grid_point": result["grid_point"],
         "grid_size": result["grid_size"],
         "seeds": [s["seed"] for s in seeds],
         "num_steps": document["num_testing_itrs"],
         "files": [os.path.relpath(os.path.join(stage.folder, s["file"]),
                                   study_dir) for s in seeds]}
  for step in LOSS_STEPS:
    if step < document["num_testing_itrs"]:
      row["loss@%d" % step] = _stats(
          [s["loss_at"].get(str(step)) for s in seeds])
  row["final_last100"] = _stats([s["final_loss_last100"] for s in seeds])
  for key in ("test_loss", "test_accuracy", "validation_loss"):
    row[key] = _stats([(s.get("heldout") or {}).get(key) for s in seeds])
  row["top_eigenvalue"] = _stats(
      [(s.get("curvature") or {}).get("top_eigenvalue") for s in seeds])
  row["diverged"] = not all(s["finite"] for s in seeds)
  return row


def meta_parameter_changes(training_stages, seed, problem_spec):
  """Per finished variant, how far its model.ckpt-0 is from its start.

  Returns:
    dict variant -> ||theta_best - theta_start|| / ||theta_start||.
  """
  changes, starts = {}, {}
  for stage in training_stages:
    if not stages_lib.is_done(stage):
      continue
    prefix = stages_lib.checkpoint_prefix(stage)
    logdir = os.path.dirname(prefix)
    with open(os.path.join(logdir, "optimizer.json")) as f:
      key = f.read()
    # Variants with the same optimizer and seed start from the same values.
    if key not in starts:
      starts[key] = meta_parameters.initial_values(logdir, seed,
                                                   problem_spec)
    start = starts[key]
    changes[stage.variant] = meta_parameters.relative_change(
        meta_parameters.checkpoint_values(prefix, list(start)), start)
  return changes


def collect(study_dir, all_stages, changes=None):
  """The report's content as a dict (see module docstring).

  Args:
    study_dir: the study folder.
    all_stages: the study's `plan.Stage`s.
    changes: optional `meta_parameter_changes` of the training stages.
  """
  training = {}
  for stage in all_stages:
    if stage.kind == "train":
      done = stages_lib.is_done(stage)
      training[stage.variant] = {
          "seconds": stages_lib.seconds_spent(stage) if done else None,
          "done": done,
          "meta_parameter_change": (changes or {}).get(stage.variant)}
  sets = []
  for evaluation_set in plan.EVALUATION_SETS:
    mine = [s for s in all_stages if s.evaluation_set == evaluation_set.name]
    if not mine:
      continue
    rows = []
    for stage in mine:
      row = _row(stage, study_dir)
      if row is None:
        rows.append({"name": stage.variant, "missing": True})
        continue
      row["meta_training_seconds"] = (training.get(stage.variant) or
                                      {}).get("seconds")
      rows.append(row)
    sets.append({"name": evaluation_set.name, "heldout": evaluation_set.heldout,
                 "description": evaluation_set.description, "rows": rows})
  return {"training": training, "sets": sets}


def _cell(stats, digits=4, bold=False):
  if stats is None:
    return "n/a"
  text = "%.*g ± %.2g" % (digits, stats["mean"], stats["std"])
  return "**%s**" % text if bold else text


# (column title, row key, lower is better); the held-out columns only on
# held-out sets.
_COLUMNS = [("loss @%d" % s, "loss@%d" % s, True) for s in LOSS_STEPS] + [
    ("final (last-100 mean)", "final_last100", True)]
_HELDOUT_COLUMNS = [("test loss", "test_loss", True),
                    ("test accuracy", "test_accuracy", False)]
_CURVATURE_COLUMNS = [("top Hessian eigenvalue", "top_eigenvalue", None)]


def _best(rows, key, lower):
  values = [(r[key]["mean"], i) for i, r in enumerate(rows)
            if not r.get("missing") and r.get(key) is not None]
  if not values or lower is None:
    return None
  return (min(values) if lower else max(values))[1]


def _wall(seconds):
  if seconds is None:
    return "-"
  return "%.1f min" % (seconds / 60.)


def table(evaluation_set):
  """The markdown table of one evaluation set of `collect`'s dict."""
  rows = evaluation_set["rows"]
  present = [r for r in rows if not r.get("missing")]
  columns = [c for c in _COLUMNS if any(c[1] in r for r in present)]
  if evaluation_set["heldout"]:
    columns += _HELDOUT_COLUMNS
  columns += _CURVATURE_COLUMNS
  best = {key: _best(rows, key, lower) for _, key, lower in columns}
  lines = ["| optimizer | chosen point | " +
           " | ".join(c[0] for c in columns) + " | meta-training |",
           "|---" * (len(columns) + 3) + "|"]
  for index, row in enumerate(rows):
    if row.get("missing"):
      lines.append("| %s | not run yet |%s" % (
          row["name"], " |" * (len(columns) + 1)))
      continue
    point = row["grid_point"]
    if row["grid_size"] > 1:
      point += " (of %d)" % row["grid_size"]
    if row["diverged"]:
      point += ", diverged on a seed"
    cells = [_cell(row.get(key), bold=best[key] == index)
             for _, key, _ in columns]
    lines.append("| %s | %s | %s | %s |" % (
        row["name"], point, " | ".join(cells),
        _wall(row.get("meta_training_seconds"))))
  return "\n".join(lines)


def _curves(study_dir, evaluation_set):
  """Per optimizer, the per-seed loss records of the chosen point."""
  curves = {}
  for row in evaluation_set["rows"]:
    if row.get("missing"):
      continue
    runs = []
    for name in row["files"]:
      with open(os.path.join(study_dir, name), "rb") as f:
        runs.append(np.asarray(pickle.load(f), dtype=np.float64))
    curves[row["name"]] = runs
  return curves


def write_plots(study_dir, content):
  """Writes one loss-curve figure per evaluation set; returns their names."""
  names = []
  for evaluation_set in content["sets"]:
    curves = _curves(study_dir, evaluation_set)
    if not curves:
      continue
    name = "loss_curves-%s.png" % evaluation_set["name"]
    if plot.plot_loss_curves(os.path.join(study_dir, name),
                             {evaluation_set["name"]: curves},
                             title="chosen grid points, mean and range over "
                             "seeds"):
      names.append(name)
  return names


def training_table(content):
  """The meta-training table: wall time and how far each variant moved."""
  lines = ["| variant | meta-training wall time | meta-parameter change "
           "\\|\\|θ_best − θ_start\\|\\| / \\|\\|θ_start\\|\\| |",
           "|---|---|---|"]
  for name, entry in content["training"].items():
    change = entry.get("meta_parameter_change")
    lines.append("| %s | %s | %s |" % (
        name, _wall(entry["seconds"]) if entry["done"] else "not run yet",
        "-" if change is None else "%.2g" % change))
  return "\n".join(lines)


def markdown(content, header, plots=()):
  """The report: `header` (markdown text), the meta-training table, then a
  section per evaluation set."""
  parts = [header.rstrip() + "\n",
           "## Meta-training\n\n%s\n" % training_table(content)]
  for evaluation_set in content["sets"]:
    parts.append("## %s\n\n%s.\n\n%s\n" % (
        evaluation_set["name"], evaluation_set["description"],
        table(evaluation_set)))
    figure = "loss_curves-%s.png" % evaluation_set["name"]
    if figure in plots:
      parts.append("![%s](%s)\n" % (evaluation_set["name"], figure))
  return "\n".join(parts)
