"""Hyper-parameter grids of the evaluated optimizers and the choice among them.

A fair comparison tunes every optimizer on the same seeds and batches:
a baseline over a grid of learning rates, the learned optimizer over a grid
of initial per-coordinate learning-rate ranges. Each grid point is evaluated
on every seed; `select` then picks one point per optimizer and problem by
the rule documented there. Points are plain `GridPoint`s so that the same
rule serves both kinds.
"""

import collections
import math

# The initial learning rates tried, in this order, when the learned
# optimizer gets a default grid of k points: its original range first,
# then the first k - 1 of these single values.
DEFAULT_INITIAL_LEARNING_RATES = (1e-3, 3e-3, 1e-4, 1e-2, 3e-4, 3e-2, 3e-5,
                                  1e-5)

RULE_VALIDATION = ("lowest mean over seeds of the validation loss after the "
                   "last step")
RULE_TRAINING = ("lowest mean over seeds of the mean of the last 100 "
                 "training minibatch losses")


class GridPoint(collections.namedtuple("GridPoint", ["label", "low", "high"])):
  """One point of a grid.

  Attributes:
    label: how the point is written on the command line and in reports
      ("0.003" or, for a range, "1e-06:0.01").
    low, high: the learning rate (low == high) or the range of initial
      learning rates.
  """

  __slots__ = ()

  @property
  def value(self):
    """The point's position on a log axis (the range's geometric mean)."""
    return math.sqrt(self.low * self.high)

  @property
  def is_range(self):
    return self.low != self.high


def _format(number):
  return "%g" % number


def point(low, high=None):
  """A GridPoint for a learning rate, or for the range [low, high]."""
  high = low if high is None else high
  label = _format(low) if low == high else "%s:%s" % (_format(low),
                                                      _format(high))
  return GridPoint(label, float(low), float(high))


def _positive(text, flag):
  try:
    number = float(text)
  except ValueError:
    number = float("nan")
  if not (number > 0 and math.isfinite(number)):
    raise ValueError("--%s: %r is not a positive number" % (flag, text))
  return number


def _no_duplicates(points, flag):
  seen = set()
  for p in points:
    if (p.low, p.high) in seen:
      raise ValueError("--%s: %s is listed twice" % (flag, p.label))
    seen.add((p.low, p.high))
  return points


def parse_learning_rates(texts, flag):
  """A baseline's learning-rate grid from its flag's list of strings.

  Args:
    texts: e.g. ["1e-4", "3e-4", "1e-3"] (a single value is a 1-point grid).
    flag: the flag's name, for error messages.

  Returns:
    A list of GridPoints, in the order given.

  Raises:
    ValueError: empty, a value that is not a positive number, or a repeat;
      the message names the flag.
  """
  if not texts:
    raise ValueError("--%s: give at least one learning rate" % flag)
  return _no_duplicates([point(_positive(t, flag)) for t in texts], flag)


def parse_initial_learning_rates(texts, flag, original):
  """The learned optimizer's grid of initial learning-rate ranges.

  Args:
    texts: entries "low:high" (a range, low <= high) or "value" (every
      coordinate starts at that learning rate).
    flag: the flag's name, for error messages.
    original: (min_lr, max_lr) of the optimizer's settings; always a point
      of the grid (added first when missing).

  Returns:
    A list of GridPoints, the original range first.

  Raises:
    ValueError: a malformed entry, naming the flag.
  """
  points = [point(*original)]
  for text in texts:
    parts = text.split(":")
    if len(parts) > 2:
      raise ValueError("--%s: %r: expected a learning rate or low:high" %
                       (flag, text))
    numbers = [_positive(p, flag) for p in parts]
    if numbers[0] > numbers[-1]:
      raise ValueError("--%s: %r: the range's low end exceeds its high end" %
                       (flag, text))
    candidate = point(numbers[0], numbers[-1])
    if (candidate.low, candidate.high) != (points[0].low, points[0].high):
      points.append(candidate)
  return _no_duplicates(points, flag)


def default_initial_learning_rates(original, size):
  """A `size`-point grid for the learned optimizer: its range, then singles.

  Used when the command line gives no grid but the baselines have grids of
  `size` points, so that tuned is compared with tuned on equal budgets.
  """
  points = [point(*original)]
  for rate in DEFAULT_INITIAL_LEARNING_RATES:
    if len(points) >= size:
      break
    points.append(point(rate))
  return points


def selection_value(seed_entry, has_validation):
  """The number a seed contributes to its grid point's score, or None.

  None when the run diverged: a non-finite training loss at any step, or a
  non-finite value of the rule's quantity.
  """
  if not seed_entry.get("finite", True):
    return None
  if has_validation:
    final = seed_entry.get("heldout") or {}
    value = final.get("validation_loss")
  else:
    value = seed_entry.get("final_loss_last100")
  if value is None or not math.isfinite(value):
    return None
  return float(value)


Selection = collections.namedtuple("Selection", [
    "rule",      # the rule's text (RULE_VALIDATION or RULE_TRAINING)
    "scores",    # per point: the mean over seeds, or None (diverged)
    "chosen",    # index of the chosen point, or None if every point diverged
    "at_edge",   # whether the chosen point is the lowest or highest of >= 2
])


def select(points, per_point_seeds, has_validation):
  """Picks the grid point with the lowest score.

  Rule: where the problem has a validation split, the score of a point is
  the mean over seeds of the validation loss after the last step; otherwise
  the mean over seeds of the mean of the last 100 training losses. A point
  with a non-finite value on any seed has diverged: it is reported (score
  None) and never chosen. Equal scores go to the lower learning rate (for
  ranges, the lower geometric mean).

  Args:
    points: list of GridPoints.
    per_point_seeds: for each point, the list of its per-seed summary
      entries (see `selection_value`).
    has_validation: whether the problem has a validation split.

  Returns:
    A Selection.
  """
  scores = []
  for seeds in per_point_seeds:
    values = [selection_value(s, has_validation) for s in seeds]
    if not values or any(v is None for v in values):
      scores.append(None)
    else:
      scores.append(sum(values) / len(values))
  candidates = [i for i, s in enumerate(scores) if s is not None]
  chosen = None
  if candidates:
    chosen = min(candidates, key=lambda i: (scores[i], points[i].value))
  order = sorted(range(len(points)), key=lambda i: points[i].value)
  at_edge = (chosen is not None and len(points) >= 2 and
             chosen in (order[0], order[-1]))
  return Selection(RULE_VALIDATION if has_validation else RULE_TRAINING,
                   scores, chosen, at_edge)


def edge_warning(optimizer, problem, points, selection, flag):
  """The warning line for a choice at the edge of its grid, or None."""
  if not selection.at_edge:
    return None
  lowest = min(range(len(points)), key=lambda i: points[i].value)
  side = "lowest" if selection.chosen == lowest else "highest"
  return ("warning: %s on %s: the chosen point %s is the %s of its grid; the "
          "best may lie beyond it (extend --%s)" %
          (optimizer, problem, points[selection.chosen].label, side, flag))
