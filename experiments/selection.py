"""Choosing the checkpoint of a meta-training run that a study evaluates.

metarun.py keeps as `model.ckpt-0` the checkpoint of its best evaluation,
and that evaluation is a few trajectories at random initial learning rates
on random data: on the MNIST MLP the same meta-parameters score anywhere in
a ten-fold range (docs/recipe_search.md), so the "best" is mostly the
luckiest. This module scores the run's numbered checkpoints (every
`every`-th meta-iteration and the last) with `metatest.py` on the
meta-training problem on seeds that no evaluation of the study uses, each
at its best point of a small initial-learning-rate grid (its own range,
which metatest.py always evaluates, and fixed rates), and keeps the one with
the lowest mean last-100 training loss as `model.ckpt-selected` beside the
others: the checkpoint that is best when tuned, as the evaluation tunes it,
not the one that is best at one rate (a fixed rate favours checkpoints
whose best rate happens to be that one). The
recorded start (`model.ckpt-initial`) is scored too, as a reference, but is
never chosen. `selection.json` records every score.
"""

import json
import math
import os
import re

import numpy as np

from experiments import plan
from optimizer import checkpoint_files
from run_control import atomic

SELECTED = plan.SELECTED_CHECKPOINT
RESULT_FILE = "selection.json"
EVERY_FLAG = plan.SELECT_EVERY_FLAG
_NUMBERED = re.compile(r"^%s-(\d+)$" % re.escape(checkpoint_files.PREFIX))


class SelectionError(RuntimeError):
  """No checkpoint to choose from, or an evaluation failed (one line)."""


def candidates(log_dir, every):
  """The numbered checkpoints to score: every `every`-th meta-iteration
  and the last (`model.ckpt-0`, a copy of the run's best, is left out)."""
  numbers = sorted(int(m.group(1)) for m in (
      _NUMBERED.match(n) for n in checkpoint_files.listed(log_dir))
                   if m and int(m.group(1)) > 0)
  if not numbers:
    return []
  chosen = [n for n in numbers if n % every == 0]
  if numbers[-1] not in chosen:
    chosen.append(numbers[-1])
  return [checkpoint_files.name(n) for n in chosen]


def _score(folder):
  """(mean last-100 loss, per-seed values, grid point) of the best grid
  point of a finished metatest.py run in `folder`, or None if it has not
  finished. A point with a non-finite seed scores inf."""
  try:
    with open(os.path.join(folder, "summary.json")) as f:
      document = json.load(f)
  except (OSError, ValueError):
    return None
  best = None
  for result in document["results"]:
    values = [e["final_loss_last100"] for e in result["per_seed"]]
    finite = [v for v in values if v is not None and math.isfinite(v)]
    mean = float(np.mean(finite)) if len(finite) == len(values) else math.inf
    if best is None or mean < best[0]:
      best = (mean, values, result.get("grid_point"))
  return best


def split_argv(argv):
  """(metatest.py flags, every) of a selection stage's argv."""
  every = [a for a in argv if a.startswith(EVERY_FLAG)]
  rest = [a for a in argv if not a.startswith(EVERY_FLAG)]
  return rest, int(every[-1][len(EVERY_FLAG):]) if every else 1


def select(log_dir, folder, argv, every, evaluate, out):
  """Scores the candidates, copies the best to `SELECTED`, records it.

  Finished scores (a folder with its summary.json) are read, not redone, so
  an interrupted selection goes on where it stopped.

  Args:
    log_dir: the run's log folder (holding model.ckpt-N).
    folder: where each candidate's metatest.py output and RESULT_FILE go.
    argv: metatest.py flags of one scoring run, without
      --restore_model_name and --save_dir.
    every: score every `every`-th meta-iteration's checkpoint (and the
      last).
    evaluate: function(argv, out) -> exit status, running metatest.py.
    out: where progress goes.

  Returns:
    The chosen checkpoint's name.

  Raises:
    SelectionError: no numbered checkpoint, or a scoring run failed.
  """
  names = candidates(log_dir, every)
  if not names:
    raise SelectionError("%s: no numbered checkpoint to select from" %
                         log_dir)
  scores = {}
  for index, name in enumerate([checkpoint_files.INITIAL] + names):
    save_dir = os.path.join(folder, name)
    if _score(save_dir) is None:
      out.write("selection %d/%d: %s\n" % (index + 1, len(names) + 1, name))
      status = evaluate(list(argv) + ["--restore_model_name=" + name,
                         "--save_dir=" + save_dir], out)
      if status != 0 or _score(save_dir) is None:
        raise SelectionError("scoring %s failed (exit status %s)" %
                             (name, status))
    scores[name] = _score(save_dir)
  chosen = min(names, key=lambda n: (scores[n][0], names.index(n)))
  checkpoint_files.copy(os.path.join(log_dir, chosen), log_dir, SELECTED)
  atomic.write_json(os.path.join(folder, RESULT_FILE), {
      "chosen": chosen,
      "scores": [{"checkpoint": n, "last100_mean": _json_number(scores[n][0]),
                  "per_seed": scores[n][1], "grid_point": scores[n][2]}
                 for n in [checkpoint_files.INITIAL] + names],
      "argv": list(argv), "every": every})
  out.write("selected %s (last-100 loss %.4g; the start %.4g)\n" % (
      chosen, scores[chosen][0], scores[checkpoint_files.INITIAL][0]))
  return chosen


def _json_number(value):
  return value if math.isfinite(value) else None


def read(folder):
  """The RESULT_FILE of a finished selection (dict), or None."""
  try:
    with open(os.path.join(folder, RESULT_FILE)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None
