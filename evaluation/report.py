"""comparison.md: the optimizers of a comparison run side by side.

One table per problem, one row per optimizer at its chosen grid point (the
learned optimizer at its chosen initial learning rates, each baseline at its
chosen learning rate), built from a summary.json document only, so that it
can be regenerated from the files (`write_comparison(save_dir,
summary.read_summary(save_dir))`).
"""

import math
import os

from evaluation import summary
from run_control import atomic

COMPARISON_FILE = "comparison.md"
TRAINING_STEPS = (100, 1000, 10000)


def _cell(stats, scale=1., digits=4):
  if stats is None:
    return "n/a"
  if stats["count"] == 1:
    return "%.*g" % (digits, stats["mean"] * scale)
  return "%.*g ± %.2g" % (digits, stats["mean"] * scale, stats["std"] * scale)


def _position(label):
  """A grid label's place on a log axis (a range's geometric mean)."""
  low, _, high = label.partition(":")
  return math.sqrt(float(low) * float(high or low))


def _grid_text(selection):
  """Every point with its score, lowest learning rate first; the chosen
  one bold."""
  labels = []
  for label, score in sorted(zip(selection["grid"], selection["scores"]),
                             key=lambda pair: _position(pair[0])):
    text = "%s: %s" % (label, "diverged" if score is None
                       else "%.3g" % score)
    labels.append("**%s**" % text if label == selection["chosen"] else text)
  return ", ".join(labels)


def _steps(document):
  """The training-loss columns: 100, 1,000, 10,000 where the run reached."""
  last = document["num_testing_itrs"]
  steps = [s for s in TRAINING_STEPS if s < last]
  return steps + [last]


def problem_table(document, problem):
  """Markdown lines of one problem's table."""
  steps = _steps(document)
  chosen = [r for r in document["results"]
            if r["problem"] == problem and r["chosen"]]
  selections = {s["optimizer"]: s for s in document["selection"]
                if s["problem"] == problem}
  header = (["optimizer", "chosen point"] +
            ["train loss @%d" % s for s in steps] +
            ["last-100 mean", "test loss", "test accuracy", "top eigenvalue",
             "ms/step",
             "grid point: score (chosen in bold)"])
  rows = [header]
  for result in chosen:
    stats = result["aggregate"]
    kind = ("initial lr " if result.get("initial_learning_rates")
            else "lr ")
    rows.append(
        [result["optimizer"], kind + result["grid_point"]] +
        [_cell(stats.get("loss_at/%d" % s)) for s in steps] +
        [_cell(stats.get("final_loss_last100")),
         _cell(stats.get("heldout/test_loss")),
         _cell(stats.get("heldout/test_accuracy")),
         _cell(stats.get("curvature/top_eigenvalue")),
         _cell(stats.get("seconds_per_step"), 1e3, 3),
         _grid_text(selections[result["optimizer"]])])
  diverged = [s["optimizer"] for s in selections.values()
              if s["chosen"] is None]
  lines = summary.markdown(rows).splitlines()
  for name in diverged:
    lines += ["", "%s: every grid point diverged (%s)." %
              (name, ", ".join(selections[name]["grid"]))]
  for name, selection in selections.items():
    if selection["at_edge"]:
      lines += ["", "%s: the chosen point %s lies at the edge of its grid; "
                "the best may lie beyond it." % (name, selection["chosen"])]
  return lines


def _budget_sentence(document, problems):
  sizes = {}
  for selection in document["selection"]:
    if selection["problem"] in problems:
      sizes.setdefault(selection["optimizer"], len(selection["grid"]))
  if len(set(sizes.values())) == 1:
    size = next(iter(sizes.values()))
    if size == 1:
      return ("**Untuned**: every optimizer ran at one setting (a grid of "
              "one point); pass lists to the learning-rate flags and "
              "--init_lr_grid to tune.")
    return ("Tuned against tuned: every optimizer was evaluated on a grid of "
            "%d points (equal budgets) and is reported at its chosen point." %
            size)
  return ("Grids differ in size (%s): the comparison is not on equal tuning "
          "budgets." % ", ".join("%s %d" % kv for kv in sorted(sizes.items())))


def comparison_markdown(document):
  """The text of comparison.md for a summary.json document."""
  problems = []
  for result in document["results"]:
    if result["problem"] not in problems:
      problems.append(result["problem"])
  rules = sorted({s["rule"] for s in document["selection"]})
  lines = [
      "# Comparison: model %s, %d steps, seeds %s" % (
          document["model_name"], document["num_testing_itrs"],
          ",".join(str(s) for s in document["seeds"])),
      "",
      "Command: `%s`" % " ".join(document.get("command") or []),
      "",
      _budget_sentence(document, problems) + " Every grid point ran on the "
      "same seeds%s." % (" and mini-batches" if document.get(
          "seed_batch_order") else ""),
      "",
      "Chosen point: " + "; ".join(rules) + " (diverged points are never "
      "chosen; equal scores go to the lower learning rate). In the grid "
      "column the chosen point is bold.",
      "",
      "Values are mean ± std over seeds. Train loss @k: the mini-batch "
      "training loss at step k; last-100 mean: the mean of the last 100 "
      "mini-batch losses. Test loss and accuracy: every test sample, "
      "after the last step (held-out sets only; n/a elsewhere). Top "
      "eigenvalue: the Hessian's largest eigenvalue of the training loss at "
      "the final parameters (Lanczos). Score: the quantity of the rule "
      "above, mean over seeds.",
  ]
  for problem in problems:
    lines += ["", "## %s" % problem, ""] + problem_table(document, problem)
  return "\n".join(lines) + "\n"


def write_comparison(save_dir, document):
  """Writes `<save_dir>/comparison.md` atomically; returns its path."""
  path = os.path.join(save_dir, COMPARISON_FILE)
  atomic.write_text(path, comparison_markdown(document))
  return path
