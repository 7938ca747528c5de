"""Statistics of evaluation runs, the result files and the comparison table.

Per seed the original wrote a pickle of the per-step losses
(`seed{seed}_eval_loss_record.pickle-{model_name}`); this module keeps those
files and adds `summary.json`, which a script can read without pickle:

  {"format": 2, "command": [...], "model_name": ..., "num_testing_itrs": N,
   "seeds": [...], "loss_at_steps": [1, 10, ...],
   "results": [{"optimizer": "L2o", "problem": "...", "checkpoint": ...,
                "learning_rate": ..., "initial_learning_rates": ...,
                "grid_point": "...", "grid_size": k, "chosen": true|false,
                "per_seed": [SEED, ...], "history": HISTORY,
                "aggregate": {STAT: {"mean", "std", "median", "min", "max",
                                     "count"}}}],
   "selection": [SELECTION, ...]}

with SEED = {"seed", "file", "num_steps", "final_loss", "final_loss_last100",
"best_loss", "best_step", "loss_at": {"<step>": loss}, "final_full_loss",
"seconds_per_step", "seconds_total", "finite"} and, where measured,
"metrics_file" (the per-seed JSON of `write_seed_metrics`), "heldout"
({"<split>_loss", "<split>_accuracy"} on every sample of the train,
validation and test splits after the last step) and "curvature"
({"top_eigenvalue", "trace", "trace_stderr" (Hutchinson's standard
error), "num_samples", "lanczos_steps", "num_probes"}). Losses are the minibatch losses before each step (step k =
the loss after k - 1 updates); `final_full_loss` is the objective on the
whole data set the optimizee trains on, after the last step;
`seconds_per_step` is the median wall time of one step. Non-finite numbers
are written as null.

HISTORY (held-out sets only) is the recorded loss and accuracy per split
over time aggregated over seeds (`aggregate_history`).

Each (problem, optimizer) pair has one result per point of its grid
(`learning_rate` for baselines; `initial_learning_rates` [low, high] for the
learned optimizer), and one SELECTION = {"problem", "optimizer", "rule",
"grid": [labels], "scores": [number or null], "diverged": [labels],
"chosen": label or null, "at_edge": bool}; `chosen` marks the chosen
result (see `evaluation.tuning.select`). Format 1 (before grids) had no
"selection", "grid_point", "chosen" or measured entries.
"""

import json
import math
import os
import pickle

import numpy as np

from run_control import atomic

FORMAT_VERSION = 2
SUMMARY_FILE = "summary.json"
SMOOTHING = 100

# The statistics aggregated over seeds.
AGGREGATED = ("final_loss", "final_loss_last100", "best_loss",
              "final_full_loss", "seconds_per_step")
# Measured entries aggregated as "<group>/<key>" where present.
MEASURED = {"heldout": ("train_loss", "train_accuracy", "validation_loss",
                        "validation_accuracy", "test_loss", "test_accuracy"),
            "curvature": ("top_eigenvalue", "trace")}


def loss_steps(num_steps):
  """The steps at which the loss is reported: 1, 10, 100, ... and the last."""
  steps, step = [], 1
  while step < num_steps:
    steps.append(step)
    step *= 10
  if num_steps:
    steps.append(num_steps)
  return steps


def _number(value):
  value = float(value)
  return value if math.isfinite(value) else None


def seed_statistics(seed, losses, final_full_loss, seconds_per_step,
                    file_name, heldout=None, curvature=None,
                    metrics_file=None):
  """The per-seed entry of summary.json.

  Args:
    seed: the seed of the run.
    losses: the per-step minibatch losses.
    final_full_loss: objective on the whole data set after the last step.
    seconds_per_step: per-step wall times.
    file_name: the run's pickle file name (relative to the summary).
    heldout: optional dict "<split>_loss"/"<split>_accuracy" -> number,
      measured on whole splits after the last step.
    curvature: optional `flatness.Curvature` of the final parameters.
    metrics_file: the run's per-seed JSON file (relative to the summary).
  """
  losses = np.asarray(losses, dtype=np.float64)
  finite = bool(np.all(np.isfinite(losses)))
  masked = np.where(np.isfinite(losses), losses, np.inf)
  best = int(np.argmin(masked)) if len(losses) else 0
  entry = {
      "seed": seed,
      "file": file_name,
      "num_steps": int(len(losses)),
      "final_loss": _number(losses[-1]) if len(losses) else None,
      "final_loss_last100": (_number(np.mean(losses[-SMOOTHING:]))
                             if len(losses) else None),
      "best_loss": _number(masked[best]) if len(losses) else None,
      "best_step": best + 1 if len(losses) else None,
      "loss_at": {str(k): _number(losses[k - 1])
                  for k in loss_steps(len(losses))},
      "final_full_loss": _number(final_full_loss),
      "seconds_per_step": (_number(np.median(seconds_per_step))
                           if len(seconds_per_step) else None),
      "seconds_total": _number(np.sum(seconds_per_step)),
      "finite": finite,
  }
  if metrics_file is not None:
    entry["metrics_file"] = metrics_file
  if heldout is not None:
    entry["heldout"] = {k: _number(v) for k, v in heldout.items()}
  if curvature is not None:
    entry["curvature"] = {
        "top_eigenvalue": _number(curvature.top_eigenvalue),
        "trace": _number(curvature.trace),
        "trace_stderr": (None if curvature.trace_stderr is None
                         else _number(curvature.trace_stderr)),
        "num_samples": curvature.num_samples,
        "lanczos_steps": curvature.lanczos_steps,
        "num_probes": curvature.num_probes}
  return entry


def aggregate(per_seed):
  """Mean, std, median, min and max over seeds of each AGGREGATED stat.

  Seeds whose value is null (non-finite) are left out; a stat that no seed
  has is null.
  """
  result = {}
  first = per_seed[0] if per_seed else {}
  keys = list(AGGREGATED) + ["loss_at/" + k for k in first.get("loss_at", {})]
  for group, names in MEASURED.items():
    keys += ["%s/%s" % (group, n) for n in names if n in first.get(group, {})]
  for key in keys:
    if "/" in key:
      group, name = key.split("/")
      values = [(s.get(group) or {}).get(name) for s in per_seed]
    else:
      values = [s[key] for s in per_seed]
    values = np.array([v for v in values if v is not None], dtype=np.float64)
    if not len(values):
      result[key] = None
      continue
    result[key] = {"mean": float(np.mean(values)),
                   "std": float(np.std(values)),
                   "median": float(np.median(values)),
                   "min": float(np.min(values)),
                   "max": float(np.max(values)),
                   "count": int(len(values))}
  return result


def write_pickle(path, value):
  """Pickles `value` to `path` atomically (`run_control.atomic`)."""
  atomic.write_bytes(path, pickle.dumps(value))


def write_loss_record(path, losses):
  """The original's per-seed pickle: a list of numpy float32 scalars."""
  write_pickle(path, [np.float32(v) for v in losses])


def aggregate_history(histories):
  """Mean, min and max over seeds of recorded held-out histories.

  Args:
    histories: per-seed dicts with "steps" and lists of numbers of equal
      length (`metrics.SplitMetrics.history`).

  Returns:
    {"steps": [...], KEY: {"mean": [...], "min": [...], "max": [...]}}
    (null where a step's value is non-finite on some seed).
  """
  result = {"steps": list(histories[0]["steps"])}
  for key in histories[0]:
    if key == "steps":
      continue
    values = np.array([h[key] for h in histories], dtype=np.float64)
    result[key] = {"mean": _plain(np.mean(values, 0)),
                   "min": _plain(np.min(values, 0)),
                   "max": _plain(np.max(values, 0))}
  return result


def json_text(document):
  """`document` as the indented JSON text of the result files."""
  return json.dumps(document, indent=1, allow_nan=False) + "\n"


def write_json(path, document):
  """Writes `document` as indented JSON to `path`, atomically."""
  atomic.write_text(path, json_text(document))


def _plain(values):
  return [_number(v) for v in values]


def write_seed_metrics(path, seed, history=None, final=None, curvature=None,
                       subset_size=None):
  """The per-seed JSON file of the measured quantities; returns `path`.

  Content: {"format": 1, "seed", "steps": [...], "<split>_loss": [...],
  "<split>_accuracy": [...] (the recorded history; before the last step
  each split on a fixed subset of at most "subset" samples where that is
  not null), "final":
  {"<split>_loss", "<split>_accuracy"} on every sample after the last step,
  "curvature": {"top_eigenvalue", "trace", "trace_stderr", "ritz_values",
  "weights", "num_samples", "lanczos_steps", "num_probes"}}; absent parts
  are null.
  """
  document = {"format": 1, "seed": seed, "subset": subset_size}
  for key, values in (history or {}).items():
    document[key] = (list(values) if key == "steps" else _plain(values))
  document["final"] = ({k: _number(v) for k, v in final.items()}
                       if final is not None else None)
  document["curvature"] = None
  if curvature is not None:
    document["curvature"] = {
        "top_eigenvalue": _number(curvature.top_eigenvalue),
        "trace": _number(curvature.trace),
        "trace_stderr": (None if curvature.trace_stderr is None
                         else _number(curvature.trace_stderr)),
        "ritz_values": _plain(curvature.ritz_values),
        "weights": _plain(curvature.weights),
        "num_samples": curvature.num_samples,
        "lanczos_steps": curvature.lanczos_steps,
        "num_probes": curvature.num_probes}
  write_json(path, document)
  return path


def read_json(path):
  with open(path) as f:
    return json.load(f)


def make_summary(header, results, selection=()):
  """The summary.json document (see the module docstring).

  Args:
    header: dict of run-wide entries (command, model_name, seeds, ...).
    results: list of result dicts (optimizer, problem, per_seed, ...); each
      gets its "aggregate" here.
    selection: list of SELECTION dicts.
  """
  document = {"format": FORMAT_VERSION}
  document.update(header)
  document["results"] = [dict(r, aggregate=aggregate(r["per_seed"]))
                         for r in results]
  document["selection"] = list(selection)
  return document


def summary_path(save_dir):
  return os.path.join(save_dir, SUMMARY_FILE)


def write_summary(save_dir, header, results, selection=()):
  """Writes `<save_dir>/summary.json` atomically; returns its path.

  The arguments are those of `make_summary`.
  """
  path = summary_path(save_dir)
  write_json(path, make_summary(header, results, selection))
  return path


def read_summary(save_dir):
  """The parsed summary.json of `save_dir`."""
  return read_json(summary_path(save_dir))


def _cell(stats, scale=1., digits=4):
  if stats is None:
    return "n/a"
  return "%.*g ± %.2g" % (digits, stats["mean"] * scale, stats["std"] * scale)


def _steps_of(results):
  steps = set()
  for result in results:
    for key in result.get("aggregate") or aggregate(result["per_seed"]):
      if key.startswith("loss_at/"):
        steps.add(int(key[len("loss_at/"):]))
  return sorted(steps)


def point_cell(result, grid_sizes):
  """The grid point of a result, starred when chosen from several."""
  label = result.get("grid_point")
  if label is None:
    return ""
  several = grid_sizes.get((result["problem"], result["optimizer"]), 1) > 1
  return label + (" *" if several and result.get("chosen") else "")


def grid_sizes(results):
  """(problem, optimizer) -> number of grid points among `results`."""
  sizes = {}
  for result in results:
    key = (result["problem"], result["optimizer"])
    sizes[key] = sizes.get(key, 0) + 1
  return sizes


def table(results, steps=None):
  """A plain-text table (Markdown pipes) of aggregated results.

  Columns: problem, optimizer, its grid point (learning rate or initial
  learning-rate range; * marks the chosen one of several), loss at the
  given steps (mean ± std over seeds), final loss (mean of the last 100
  steps), best loss, whole-data loss after the last step; where measured,
  validation and test loss and accuracy after the last step and the
  Hessian's top eigenvalue and trace; milliseconds per step.
  """
  steps = _steps_of(results) if steps is None else steps
  stats_of = [r.get("aggregate") or aggregate(r["per_seed"]) for r in results]
  measured = [key for key in ("heldout/validation_loss", "heldout/test_loss",
                              "heldout/test_accuracy",
                              "curvature/top_eigenvalue", "curvature/trace")
              if any(key in stats for stats in stats_of)]
  titles = {"heldout/validation_loss": "validation loss",
            "heldout/test_loss": "test loss",
            "heldout/test_accuracy": "test accuracy",
            "curvature/top_eigenvalue": "top eigenvalue",
            "curvature/trace": "Hessian trace"}
  sizes = grid_sizes(results)
  header = (["problem", "optimizer", "grid point"] +
            ["loss @%d" % s for s in steps] +
            ["final (last 100)", "best", "full-data final"] +
            [titles[k] for k in measured] + ["ms/step"])
  rows = [header]
  for result, stats in zip(results, stats_of):
    rows.append([result["problem"], result["optimizer"],
                 point_cell(result, sizes)] +
                [_cell(stats.get("loss_at/%d" % s)) for s in steps] +
                [_cell(stats["final_loss_last100"]),
                 _cell(stats["best_loss"]), _cell(stats["final_full_loss"])] +
                [_cell(stats.get(k)) for k in measured] +
                [_cell(stats["seconds_per_step"], 1e3, 3)])
  return markdown(rows)


def markdown(rows):
  """Markdown pipe-table lines of `rows` (the first is the header)."""
  rows = [rows[0], ["---"] * len(rows[0])] + list(rows[1:])
  widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
  lines = []
  for row in rows:
    cells = [("-" * widths[i] if cell == "---" else cell.ljust(widths[i]))
             for i, cell in enumerate(row)]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)
