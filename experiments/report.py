"""The study's report: one table per evaluation set, from the runs' files.

Every number comes from the files the stages wrote: each evaluation's
`summary.json` (its chosen grid point and per-seed entries), the per-seed
loss records for the curves, the training stages' done-markers for the
meta-training wall time and the checkpoints (recorded start and best) for
how far meta-training moved each variant. `collect` gathers them into a
plain dict (written as `report.json` next to `report.md`), `markdown`
renders it.

Spread: with one meta-training seed a cell is mean ± std over the
evaluation seeds (ddof 0). With several, the mean is over every (meta-seed,
evaluation seed) pair, and the two spreads are given apart: the std over
meta-training seeds of their means, and the std over evaluation seeds
averaged over meta-training seeds. What meta-training added is each
variant's difference from the `initial` row of its own meta-training seed,
paired by evaluation seed (the same initial parameters and batches).
"""

import os
import pickle

import numpy as np

from experiments import plan
from experiments import selection
from experiments import stages as stages_lib
from experiments import training_curves
from evaluation import plot
from evaluation import summary
from optimizer import checkpoint_files
from optimizer import provenance

REPORT_FILE = "report.md"
REPORT_JSON = "report.json"
TRAINING_FIGURE = "meta_training_curves.png"
# The training-loss steps reported (those the run reached), read from the
# per-seed loss records.
LOSS_STEPS = (100, 1000, 2000, 10000)
# Per-seed metrics of a chosen grid point: key -> how to read it from a
# summary.json per-seed entry.
_METRICS = dict([
         ("final_last100", lambda e: e["final_loss_last100"]),
         ("test_loss", lambda e: (e.get("heldout") or {}).get("test_loss")),
         ("test_accuracy",
          lambda e: (e.get("heldout") or {}).get("test_accuracy")),
         ("validation_loss",
          lambda e: (e.get("heldout") or {}).get("validation_loss")),
         ("top_eigenvalue",
          lambda e: (e.get("curvature") or {}).get("top_eigenvalue"))])


def _stats(groups):
  """Mean and spreads of values grouped by meta-training seed.

  Args:
    groups: one list per meta-training seed of per-evaluation-seed values
      (None: missing or not finite).

  Returns:
    dict mean, std (over evaluation seeds, ddof 0, averaged over the
    meta-training seeds), std_meta (over the meta-training seeds' means;
    None for one seed), count, meta_seeds; None if no value is there.
  """
  groups = [np.array([v for v in g if v is not None], dtype=np.float64)
            for g in groups]
  groups = [g for g in groups if len(g)]
  if not groups:
    return None
  means = [float(np.mean(g)) for g in groups]
  return {"mean": float(np.mean(np.concatenate(groups))),
          "std": float(np.mean([np.std(g) for g in groups])),
          "std_meta": float(np.std(means)) if len(groups) > 1 else None,
          "count": int(sum(len(g) for g in groups)),
          "meta_seeds": len(groups)}


def chosen_result(document):
  """The result of the chosen grid point in a summary.json document."""
  results = document["results"]
  chosen = [r for r in results if r.get("chosen")]
  return chosen[0] if chosen else results[0]


def _stage_result(stage, study_dir):
  """An evaluation stage's chosen grid point, per seed (None if it has not
  finished)."""
  if not stages_lib.is_done(stage):
    return None
  document = summary.read_summary(stage.folder)
  result = chosen_result(document)
  entries = result["per_seed"]
  values = {key: [read(e) for e in entries] for key, read in _METRICS.items()}
  records = [_loss_record(os.path.join(stage.folder, e["file"]))
             for e in entries]
  for step in LOSS_STEPS:
    if step <= document["num_testing_itrs"]:
      values["loss@%d" % step] = [_finite(r[step - 1]) if len(r) >= step
                                  else None for r in records]
  return {
      "meta_seed": stage.meta_seed,
      "seeds": [e["seed"] for e in entries],
      "values": values,
      "grid_point": result["grid_point"], "grid_size": result["grid_size"],
      "num_steps": document["num_testing_itrs"],
      "files": [os.path.relpath(os.path.join(stage.folder, e["file"]),
                                study_dir) for e in entries],
      "diverged": not all(e["finite"] for e in entries)}


def _loss_record(path):
  """A run's per-step training losses (its metatest.py loss record)."""
  with open(path, "rb") as f:
    return np.asarray(pickle.load(f), dtype=np.float64)


def _finite(value):
  return float(value) if np.isfinite(value) else None


def _row(name, results):
  """A table row from the stage results of `name`, one per meta seed."""
  first = results[0]
  points = sorted({r["grid_point"] for r in results})
  row = {"name": name, "grid_point": ", ".join(points),
         "grid_size": first["grid_size"], "seeds": first["seeds"],
         "num_steps": first["num_steps"],
         "files": [f for r in results for f in r["files"]],
         "diverged": any(r["diverged"] for r in results),
         "meta_seeds": len(results)}
  for key in first["values"]:
    row[key] = _stats([r["values"].get(key, []) for r in results])
  return row


def _difference(variant_results, initial_results):
  """Per metric, the variant minus its initial, paired by meta-training
  seed and evaluation seed (`_stats` of the differences)."""
  out = {}
  for key in variant_results[0]["values"]:
    groups = []
    for mine, start in zip(variant_results, initial_results):
      start_of = dict(zip(start["seeds"], start["values"].get(key, [])))
      groups.append([None if v is None or start_of.get(s) is None
                     else v - start_of[s]
                     for s, v in zip(mine["seeds"], mine["values"][key])])
    out[key] = _stats(groups)
  return out


def meta_parameter_changes(training_stages, selection_stages=()):
  """Per finished training stage, its evaluated checkpoint against its start
  (the selection stage's choice where there is one, else model.ckpt-0).

  Returns:
    dict (variant, meta_seed) -> {"relative": ||theta_best - theta_start||
    / ||theta_start|| (None without a recorded start), "same_start":
    whether the recorded start equals the `initial` row's (the first
    variant's of the same meta-training seed)}.
  """
  changes, reference = {}, {}
  selected = {(s.variant, s.meta_seed): s for s in selection_stages}
  for stage in training_stages:
    if not stages_lib.is_done(stage):
      continue
    best = stages_lib.checkpoint_prefix(stage)
    chooser = selected.get((stage.variant, stage.meta_seed))
    if chooser is not None:
      if not stages_lib.is_done(chooser):
        continue
      best = stages_lib.selected_prefix(chooser)
    start = provenance.recorded_start(best)
    entry = {"relative": None, "same_start": None}
    changes[(stage.variant, stage.meta_seed)] = entry
    if start is None:
      continue
    result = provenance.examine(best)
    entry["relative"] = result["total"]["relative"]
    names = provenance.meta_parameter_names(checkpoint_files.verify(start))
    values = provenance.read(start, names)
    first = reference.setdefault(stage.meta_seed, values)
    entry["same_start"] = sorted(first) == sorted(values) and all(
        np.array_equal(first[n], values[n]) for n in values)
  return changes


def _selection(stage):
  """A selection stage's choice and scores (None without one or unfinished)."""
  if stage is None or not stages_lib.is_done(stage):
    return None
  result = selection.read(stage.folder)
  scores = {e["checkpoint"]: e["last100_mean"] for e in result["scores"]}
  return {"chosen": result["chosen"], "score": scores[result["chosen"]],
          "initial_score": scores.get(plan.INITIAL_CHECKPOINT),
          "candidates": len(scores) - 1, "argv": result["argv"]}


def collect(study_dir, all_stages, changes=None):
  """The report's content as a dict (see module docstring).

  Args:
    study_dir: the study folder.
    all_stages: the study's `plan.Stage`s.
    changes: optional `meta_parameter_changes` of the training stages.
  """
  changes = changes or {}
  training = []
  choosers = {(s.variant, s.meta_seed): s for s in all_stages
              if s.kind == "select"}
  for stage in all_stages:
    if stage.kind == "train":
      done = stages_lib.is_done(stage)
      entry = changes.get((stage.variant, stage.meta_seed)) or {}
      training.append({
          "variant": stage.variant, "meta_seed": stage.meta_seed,
          "seconds": stages_lib.seconds_spent(stage) if done else None,
          "done": done, "meta_parameter_change": entry.get("relative"),
          "same_start": entry.get("same_start"),
          "selection": _selection(choosers.get((stage.variant,
                                                stage.meta_seed)))})
  seconds = {}
  for entry in training:
    if entry["seconds"] is not None:
      seconds.setdefault(entry["variant"], []).append(entry["seconds"])
  sets = []
  for evaluation_set in plan.ALL_EVALUATION_SETS:
    mine = [s for s in all_stages if s.evaluation_set == evaluation_set.name]
    if not mine:
      continue
    names = list(dict.fromkeys(s.variant for s in mine))
    results = {name: [_stage_result(s, study_dir) for s in mine
                      if s.variant == name] for name in names}
    rows = []
    for name in names:
      if any(r is None for r in results[name]):
        rows.append({"name": name, "missing": True})
        continue
      row = _row(name, results[name])
      if name in seconds:
        row["meta_training_seconds"] = float(np.mean(seconds[name]))
      initial = results.get(plan.INITIAL)
      if (name in plan.ALL_VARIANT_NAMES and initial and
          all(r is not None for r in initial)):
        row["vs_initial"] = _difference(results[name], initial)
        row["vs_initial_by_meta_seed"] = [
            dict(_difference([mine], [start]), meta_seed=mine["meta_seed"])
            for mine, start in zip(results[name], initial)]
      rows.append(row)
    sets.append({"name": evaluation_set.name, "heldout": evaluation_set.heldout,
                 "description": evaluation_set.description, "rows": rows})
  return {"training": training, "sets": sets}


def _cell(stats, digits=4, bold=False, signed=False):
  if stats is None:
    return "n/a"
  number = "%+.*g" if signed else "%.*g"
  text = (number + " ± %.2g") % (digits, stats["mean"], stats["std"])
  if stats.get("std_meta") is not None:
    text = (number + " (± %.2g meta, ± %.2g eval)") % (
        digits, stats["mean"], stats["std_meta"], stats["std"])
  return "**%s**" % text if bold else text


# (column title, row key, lower is better); the held-out columns only on
# held-out sets.
_COLUMNS = [("loss @%d" % s, "loss@%d" % s, True) for s in LOSS_STEPS] + [
    ("final (last-100 mean)", "final_last100", True)]
_HELDOUT_COLUMNS = [("test loss", "test_loss", True),
                    ("test accuracy", "test_accuracy", False)]
_CURVATURE_COLUMNS = [("top Hessian eigenvalue", "top_eigenvalue", None)]


def _columns(evaluation_set):
  present = [r for r in evaluation_set["rows"] if not r.get("missing")]
  columns = [c for c in _COLUMNS if any(c[1] in r for r in present)]
  if evaluation_set["heldout"]:
    columns += _HELDOUT_COLUMNS
  return columns + _CURVATURE_COLUMNS


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
  columns = _columns(evaluation_set)
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


def _difference_rows(columns, labelled):
  """Table lines of (label, {key: `_stats` of differences}) pairs."""
  lines = []
  for label, differences in labelled:
    cells = []
    for _, key, lower in columns:
      stats = differences.get(key)
      cell = _cell(stats, digits=3, signed=True)
      if stats is not None and lower is not None and abs(
          stats["mean"]) > stats["std"] + (stats.get("std_meta") or 0.):
        better = stats["mean"] < 0 if lower else stats["mean"] > 0
        cell += " better" if better else " worse"
      cells.append(cell)
    lines.append("| %s | %s |" % (label, " | ".join(cells)))
  return lines


def difference_table(evaluation_set):
  """What meta-training added: each variant minus its `initial` row."""
  rows = [r for r in evaluation_set["rows"] if r.get("vs_initial")]
  if not rows:
    return None
  columns = _columns(evaluation_set)
  lines = ["| variant − initial | " + " | ".join(c[0] for c in columns) +
           " |", "|---" * (len(columns) + 1) + "|"]
  return "\n".join(lines + _difference_rows(
      columns, [(r["name"], r["vs_initial"]) for r in rows]))


def per_meta_seed_table(evaluation_set):
  """Each variant minus its own start, one line per meta-training seed
  (None with a single meta-training seed: `difference_table` says it)."""
  rows = [r for r in evaluation_set["rows"]
          if len(r.get("vs_initial_by_meta_seed") or ()) > 1]
  if not rows:
    return None
  columns = _columns(evaluation_set)
  lines = ["| variant − its start | meta-seed | " +
           " | ".join(c[0] for c in columns) + " |",
           "|---" * (len(columns) + 2) + "|"]
  return "\n".join(lines + _difference_rows(columns, [
      ("%s | %s" % (r["name"], entry["meta_seed"]), entry)
      for r in rows for entry in r["vs_initial_by_meta_seed"]]))


def _curves(study_dir, evaluation_set):
  """Per optimizer, the per-seed loss records of the chosen point."""
  curves = {}
  for row in evaluation_set["rows"]:
    if row.get("missing"):
      continue
    curves[row["name"]] = [_loss_record(os.path.join(study_dir, name))
                           for name in row["files"]]
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


def write_training_plot(study_dir, training_stages):
  """Writes the meta-training curves of the training stages that have event
  files (TRAINING_FIGURE); returns its name, or None."""
  runs = {}
  for stage in training_stages:
    log_dir = os.path.dirname(stages_lib.checkpoint_prefix(stage))
    curves = training_curves.read(log_dir)
    if curves:
      runs["%s, meta-seed %s" % (stage.variant, stage.meta_seed)] = curves
  if plot.plot_meta_training_curves(
      os.path.join(study_dir, TRAINING_FIGURE), runs,
      title="meta-training: meta-objective and evaluation cost"):
    return TRAINING_FIGURE
  return None


def training_table(content):
  """The meta-training table: wall time and how far each run moved."""
  selecting = any(e.get("selection") for e in content["training"])
  lines = ["| variant | meta-seed | meta-training wall time | meta-parameter "
           "change \\|\\|θ_best − θ_start\\|\\| / \\|\\|θ_start\\|\\| | "
           "started from the `initial` row's meta-parameters |" +
           (" selected checkpoint: selection loss (its start's) |"
            if selecting else ""),
           "|---|---|---|---|---|" + ("---|" if selecting else "")]
  for entry in content["training"]:
    change = entry.get("meta_parameter_change")
    same = entry.get("same_start")
    line = "| %s | %s | %s | %s | %s |" % (
        entry["variant"], entry["meta_seed"],
        _wall(entry["seconds"]) if entry["done"] else "not run yet",
        "-" if change is None else "%.3g %%" % (100. * change),
        "-" if same is None else ("yes (bit-identical)" if same else "NO"))
    if selecting:
      chosen = entry.get("selection")
      line += (" not run yet |" if not chosen else " %s (best of %d): %s (%s) |" % (
          chosen["chosen"], chosen["candidates"], _number(chosen["score"]),
          _number(chosen["initial_score"])))
    lines.append(line)
  return "\n".join(lines)


def _number(value):
  return "n/a" if value is None else "%.4g" % value


def markdown(content, header, plots=()):
  """The report: `header` (markdown text), the meta-training table, then a
  section per evaluation set (its table, what meta-training added, its
  figure)."""
  parts = [header.rstrip() + "\n",
           "## Meta-training\n\n%s\n" % training_table(content)]
  if TRAINING_FIGURE in plots:
    parts.append("![meta-training curves](%s)\n" % TRAINING_FIGURE)
  for evaluation_set in content["sets"]:
    parts.append("## %s\n\n%s.\n\n%s\n" % (
        evaluation_set["name"], evaluation_set["description"],
        table(evaluation_set)))
    added = difference_table(evaluation_set)
    if added:
      parts.append(
          "What meta-training added (each variant minus the `initial` row of "
          "its meta-training seed, paired by evaluation seed; each at its own "
          "chosen point; \"better\"/\"worse\" where the difference exceeds "
          "its spread):\n\n%s\n" % added)
    by_seed = per_meta_seed_table(evaluation_set)
    if by_seed:
      parts.append(
          "Per meta-training seed (mean ± std over evaluation seeds of the "
          "paired differences):\n\n%s\n" % by_seed)
    figure = "loss_curves-%s.png" % evaluation_set["name"]
    if figure in plots:
      parts.append("![%s](%s)\n" % (evaluation_set["name"], figure))
  return "\n".join(parts)
