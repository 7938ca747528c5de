"""Statistics of evaluation runs, the result files and the comparison table.

Per seed the original wrote a pickle of the per-step losses
(`seed{seed}_eval_loss_record.pickle-{model_name}`); this module keeps those
files and adds `summary.json`, which a script can read without pickle:

  {"format": 1, "command": [...], "model_name": ..., "num_testing_itrs": N,
   "seeds": [...], "loss_at_steps": [1, 10, ...],
   "results": [{"optimizer": "L2o", "problem": "...", "checkpoint": ...,
                "learning_rate": ..., "per_seed": [SEED, ...],
                "aggregate": {STAT: {"mean", "std", "median", "min",
                                     "max"}}}]}

with SEED = {"seed", "file", "num_steps", "final_loss", "final_loss_last100",
"best_loss", "best_step", "loss_at": {"<step>": loss}, "final_full_loss",
"seconds_per_step", "seconds_total", "finite"}. Losses are the minibatch
losses before each step (step k = the loss after k - 1 updates);
`final_full_loss` is the objective on the whole data set after the last
step; `seconds_per_step` is the median wall time of one step. Non-finite
numbers are written as null.
"""

import json
import math
import os
import pickle

import numpy as np

FORMAT_VERSION = 1
SUMMARY_FILE = "summary.json"
SMOOTHING = 100

# The statistics aggregated over seeds.
AGGREGATED = ("final_loss", "final_loss_last100", "best_loss",
              "final_full_loss", "seconds_per_step")


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
                    file_name):
  """The per-seed entry of summary.json.

  Args:
    seed: the seed of the run.
    losses: the per-step minibatch losses.
    final_full_loss: objective on the whole data set after the last step.
    seconds_per_step: per-step wall times.
    file_name: the run's pickle file name (relative to the summary).
  """
  losses = np.asarray(losses, dtype=np.float64)
  finite = bool(np.all(np.isfinite(losses)))
  masked = np.where(np.isfinite(losses), losses, np.inf)
  best = int(np.argmin(masked)) if len(losses) else 0
  return {
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


def aggregate(per_seed):
  """Mean, std, median, min and max over seeds of each AGGREGATED stat.

  Seeds whose value is null (non-finite) are left out; a stat that no seed
  has is null.
  """
  result = {}
  keys = list(AGGREGATED) + ["loss_at/" + k for k in
                             (per_seed[0]["loss_at"] if per_seed else {})]
  for key in keys:
    if key.startswith("loss_at/"):
      values = [s["loss_at"].get(key[len("loss_at/"):]) for s in per_seed]
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


def write_atomically(path, write):
  """Calls write(file) on a temporary file, then moves it to `path`."""
  temporary = "%s.tmp-%d" % (path, os.getpid())
  try:
    with open(temporary, "wb") as f:
      write(f)
    os.replace(temporary, path)
  finally:
    if os.path.exists(temporary):
      os.remove(temporary)


def write_pickle(path, value):
  """Pickles `value` to `path` atomically."""
  write_atomically(path, lambda f: pickle.dump(value, f))


def write_loss_record(path, losses):
  """The original's per-seed pickle: a list of numpy float32 scalars."""
  write_pickle(path, [np.float32(v) for v in losses])


def write_summary(save_dir, header, results):
  """Writes `<save_dir>/summary.json`; returns its path.

  Args:
    save_dir: output folder.
    header: dict of run-wide entries (command, model_name, seeds, ...).
    results: list of result dicts (optimizer, problem, per_seed, ...); each
      gets its "aggregate" here.
  """
  document = {"format": FORMAT_VERSION}
  document.update(header)
  document["results"] = [dict(r, aggregate=aggregate(r["per_seed"]))
                         for r in results]
  path = os.path.join(save_dir, SUMMARY_FILE)
  text = json.dumps(document, indent=1, allow_nan=False) + "\n"
  write_atomically(path, lambda f: f.write(text.encode("utf-8")))
  return path


def read_summary(save_dir):
  """The parsed summary.json of `save_dir`."""
  with open(os.path.join(save_dir, SUMMARY_FILE)) as f:
    return json.load(f)


def _cell(stats, scale=1., digits=4):
  if stats is None:
    return "n/a"
  return "%.*g ± %.2g" % (digits, stats["mean"] * scale, stats["std"] * scale)


def table(results, steps=None):
  """A plain-text table (Markdown pipes) of aggregated results.

  Columns: problem, optimizer, loss at the given steps (mean ± std over
  seeds), final loss (mean of the last 100 steps), best loss, whole-data
  loss after the last step and milliseconds per step.
  """
  if steps is None:
    steps = []
    for result in results:
      for key in aggregate(result["per_seed"]):
        if key.startswith("loss_at/") and int(key[8:]) not in steps:
          steps.append(int(key[8:]))
    steps = sorted(steps)
  header = (["problem", "optimizer"] + ["loss @%d" % s for s in steps] +
            ["final (last 100)", "best", "full-data final", "ms/step"])
  rows = [header, ["---"] * len(header)]
  for result in results:
    stats = result.get("aggregate") or aggregate(result["per_seed"])
    rows.append([result["problem"], result["optimizer"]] +
                [_cell(stats.get("loss_at/%d" % s)) for s in steps] +
                [_cell(stats["final_loss_last100"]),
                 _cell(stats["best_loss"]), _cell(stats["final_full_loss"]),
                 _cell(stats["seconds_per_step"], 1e3, 3)])
  widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
  lines = []
  for row in rows:
    cells = [("-" * widths[i] if cell == "---" else cell.ljust(widths[i]))
             for i, cell in enumerate(row)]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)
