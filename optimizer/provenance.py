r"""How far meta-training moved a learned optimizer: read from its files.

  python -m optimizer.provenance PATH [--checkpoint=NAME] [--json]

PATH is a checkpoint prefix, a log directory or a train_dir (as metatest.py's
--train_dir); --checkpoint names a checkpoint of the directory (default: its
latest). The program prints the optimizer and its shape, the meta-optimizer's
steps (`global_step`) and the meta-iterations done, then:

- with a recorded start (`model.ckpt-initial`, which metarun.py writes before
  its first meta-update): per group of meta-parameters and in total, the
  distance ||theta - theta_start||, the start's norm and their ratio;
- without one (a checkpoint of the original code, or of a run begun before
  starts were recorded): what the file itself proves. Every meta-parameter
  whose initialiser is a constant is compared with that constant, and the
  meta-optimizer's slots with the values they start at (TF1 RMSProp: mean
  square 1, momentum 0; with the original's momentum 0 the momentum slot is
  exactly the last meta-update's step).

It ends with a verdict. A change is below float32 resolution when it is
smaller than the spacing of float32 numbers at max(1, |start value|) (2^-23,
about 1.2e-7, at 1): meta-parameters enter the step in sums with terms of
order one, where such a change does not show.
"""

import os

if __name__ == "__main__":
  # Quieten TensorFlow's C++ logging, as the other programs do.
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# pylint: disable=g-import-not-at-top,wrong-import-position
import argparse
import json
import re
import sys

import numpy as np
import tensorflow.compat.v1 as tf

from optimizer import checkpoint_files
from optimizer import checkpoints
from optimizer import registry
from optimizer import settings as settings_lib
from optimizer import trainable_optimizer
# pylint: enable=g-import-not-at-top,wrong-import-position

OPTIMIZER_SCOPE = trainable_optimizer.OPTIMIZER_SCOPE
# TF1 RMSProp's slots: the mean square starts at 1, the momentum at 0.
MEAN_SQUARE_SLOT = "RMSProp"
MOMENTUM_SLOT = "RMSProp_1"
# --rms_decay's default (the original's): the mean-square slot after n
# meta-updates with zero meta-gradients is DEFAULT_RMS_DECAY ** n.
DEFAULT_RMS_DECAY = 0.9
# A mean-square slot within this of DEFAULT_RMS_DECAY ** n counts as decayed
# with zero meta-gradients (float32 rounding of n products stays far below).
_ZERO_GRADIENT_TOLERANCE = 1e-6
# A relative change ||theta - theta_start|| / ||theta_start|| below this
# counts as "effectively where it started" (metarun.py's warning, the
# verdict). Measured (docs/fidelity.md M29): 3.9e-4, the README's first
# command at the original 1e-6, changed a 1,000-step MNIST MLP's final loss
# by 2-5 %; the study's 5e-3 at 1e-3 changes behaviour entirely.
EFFECTIVELY_UNMOVED = 1e-3
# Random initialiser ops: a variable whose initial value depends on none of
# them starts at a constant.
_RANDOM_OP = re.compile(r"^(Stateless)?(Random|TruncatedNormal|Multinomial|"
                        r"ParameterizedTruncatedNormal)")


def resolution(start):
  """The float32 spacing at max(1, |start|), elementwise."""
  scale = np.maximum(1., np.abs(np.asarray(start, np.float64)))
  return np.spacing(scale.astype(np.float32)).astype(np.float64)


def below_resolution(values, start):
  """Whether every element of `values` is within resolution of `start`."""
  change = np.abs(np.asarray(values, np.float64) - np.asarray(start,
                                                              np.float64))
  return bool(np.all(change <= resolution(start)))


def relative_change(values, start):
  """||values - start|| / ||start|| over every variable of `start` together.

  Args:
    values, start: dicts variable name -> array (`values` may hold more).
  """
  moved = sum(_squared(values[n], start[n]) for n in start)
  size = sum(_squared(start[n], 0.) for n in start)
  return float(np.sqrt(moved / size)) if size else float(np.sqrt(moved))


def _squared(a, b):
  return float(np.sum(np.square(np.asarray(a, np.float64) -
                                np.asarray(b, np.float64))))


def meta_parameter_names(variable_names):
  """The meta-parameters among a checkpoint's variable names: those under
  "LOL/" that are no slot (a slot's name extends another variable's)."""
  names = set(variable_names)
  return sorted(n for n in names if n.startswith(OPTIMIZER_SCOPE + "/") and
                n.rsplit("/", 1)[0] not in names)


def group_of(name, groups):
  """The group of meta-parameter `name` (see
  `TrainableOptimizer.META_PARAMETER_GROUPS`)."""
  short = name[len(OPTIMIZER_SCOPE) + 1:]
  for group, pattern in groups:
    if re.match(pattern, short):
      return group
  return short.split("/", 1)[0]


def read(prefix, names):
  """dict name -> value of the variables `names` in checkpoint `prefix`."""
  reader = tf.train.load_checkpoint(prefix)
  return {n: reader.get_tensor(n) for n in names}


def recorded_start(prefix):
  """The recorded start beside checkpoint `prefix`, or None."""
  return checkpoint_files.readable(os.path.dirname(prefix),
                                   checkpoint_files.INITIAL)


def distances(values, start, groups):
  """Per group and in total, how far `values` are from `start`.

  Args:
    values, start: dicts meta-parameter name -> array.
    groups: the optimizer's META_PARAMETER_GROUPS.

  Returns:
    (list of per-group dicts in first-appearance order, the total's dict);
    each has name, variables, scalars, distance, start_norm, relative,
    largest_change and below_resolution.
  """
  members = {}
  for name in sorted(start):
    members.setdefault(group_of(name, groups), []).append(name)
  order = [g for g, _ in groups if g in members] + sorted(
      g for g in members if g not in dict(groups))
  rows = [_distance_row(g, members[g], values, start) for g in order]
  return rows, _distance_row("total", sorted(start), values, start)


def _distance_row(group, names, values, start):
  moved = sum(_squared(values[n], start[n]) for n in names)
  size = sum(_squared(start[n], 0.) for n in names)
  largest = max(float(np.max(np.abs(np.asarray(values[n], np.float64) -
                                    start[n]), initial=0.)) for n in names)
  return {"name": group, "variables": len(names),
          "scalars": int(sum(np.size(start[n]) for n in names)),
          "distance": float(np.sqrt(moved)),
          "start_norm": float(np.sqrt(size)),
          "relative": (float(np.sqrt(moved / size)) if size else None),
          "largest_change": largest,
          "below_resolution": all(below_resolution(values[n], start[n])
                                  for n in names)}


def initial_constants(optimizer_settings):
  """The meta-parameters whose initialiser is a constant, and its value.

  Builds the optimizer of `optimizer_settings` in a scratch graph and
  follows each variable's initial value back: one that depends on no random
  op is a constant.

  Returns:
    (dict name -> constant array, sorted names of the random ones).
  """
  graph = tf.Graph()
  with graph.as_default():
    settings_lib.optimizer_spec(optimizer_settings).build()
    variables = checkpoints.meta_variables(graph)
    constant = [v for v in variables if not _depends_on_random(v.initial_value)]
    with tf.Session(graph=graph) as sess:
      values = sess.run([v.initial_value for v in constant])
  chosen = {v.op.name for v in constant}
  return ({v.op.name: value for v, value in zip(constant, values)},
          sorted(v.op.name for v in variables if v.op.name not in chosen))


def _depends_on_random(tensor):
  seen, stack = set(), [tensor.op]
  while stack:
    op = stack.pop()
    if op in seen:
      continue
    seen.add(op)
    if _RANDOM_OP.match(op.type):
      return True
    stack.extend(t.op for t in op.inputs)
    stack.extend(op.control_inputs)
  return False


def _slots(reader, names, global_step):
  """The RMSProp slots of meta-parameters `names` against their start."""
  shapes = reader.get_variable_to_shape_map()
  mean_square = [reader.get_tensor(n + "/" + MEAN_SQUARE_SLOT) for n in names
                 if n + "/" + MEAN_SQUARE_SLOT in shapes]
  momentum = [reader.get_tensor(n + "/" + MOMENTUM_SLOT) for n in names
              if n + "/" + MOMENTUM_SLOT in shapes]
  result = {}
  if mean_square:
    flat = np.concatenate([np.ravel(m) for m in mean_square]).astype(
        np.float64)
    steps = global_step or 0
    decayed = DEFAULT_RMS_DECAY ** steps
    result["mean_square"] = {
        "slots": len(mean_square), "start": 1.0, "min": float(flat.min()),
        "max": float(flat.max()), "zero_gradient_value": decayed,
        "max_deviation": float(np.max(np.abs(flat - decayed)))}
  if momentum:
    flat = np.concatenate([np.ravel(m) for m in momentum]).astype(np.float64)
    result["momentum"] = {"slots": len(momentum), "start": 0.0,
                          "max_abs": float(np.max(np.abs(flat)))}
  return result


def _optimizer_record(prefix):
  """The settings beside `prefix` (or the defaults) and their description."""
  recorded = settings_lib.load(os.path.dirname(prefix))
  values = recorded if recorded is not None else settings_lib.defaults()
  name = values["optimizer"]
  shape = ""
  if name == "HierarchicalRNN":
    shape = "levels %s" % list(settings_lib.HRNN_CELL_SIZES)
  elif name == "CoordinatewiseRNN":
    shape = "%d x %s(%d)" % (values["num_cells"], values["cell_cls"],
                             values["cell_size"])
  source = (settings_lib.CONFIG_FILE if recorded is not None else
            "the original flags' defaults (no %s)" % settings_lib.CONFIG_FILE)
  return values, {"name": name, "shape": shape, "settings": source}


def examine(path, checkpoint_name=""):
  """Everything the program prints about one checkpoint, as a dict.

  Args:
    path: checkpoint prefix, log directory or train_dir.
    checkpoint_name: a checkpoint file name in the directory (empty: the
      latest).

  Returns:
    A JSON-serialisable dict (see the module docstring; `verdict` is the
    last line, `at_start` whether it says "at its start/initialisation").

  Raises:
    checkpoints.CheckpointError: nothing suitable at `path`, or a checkpoint
      that does not read back whole.
  """
  prefix = checkpoints.resolve_checkpoint(path, checkpoint_name)
  stored = checkpoint_files.verify(prefix)
  names = meta_parameter_names(stored)
  if not names:
    raise checkpoints.CheckpointError(
        "%s holds no learned-optimizer variables (under %s/)" %
        (prefix, OPTIMIZER_SCOPE))
  optimizer_settings, optimizer = _optimizer_record(prefix)
  optimizer["variables"] = len(names)
  optimizer["scalars"] = int(sum(np.prod(stored[n], dtype=np.int64)
                                 for n in names))
  reader = tf.train.load_checkpoint(prefix)
  counters = {}
  for key, variable in (("global_step", checkpoint_files.GLOBAL_STEP_VARIABLE),
                        ("meta_iterations",
                         checkpoint_files.PROGRESS_VARIABLE)):
    counters[key] = (int(reader.get_tensor(variable))
                     if reader.has_tensor(variable) else None)
  result = dict(checkpoint=prefix, optimizer=optimizer, **counters)
  start = recorded_start(prefix)
  result["start"] = start
  values = read(prefix, names)
  if start is not None:
    result["is_start"] = (os.path.basename(prefix) == checkpoint_files.INITIAL)
    _compare_with_start(result, values, read(start, names),
                        registry.optimizer_class(
                            optimizer_settings["optimizer"]))
  else:
    _compare_with_initialisers(result, values, optimizer_settings,
                               _slots(reader, names, counters["global_step"]))
  return result


def _compare_with_start(result, values, start, optimizer_class):
  rows, total = distances(values, start,
                          optimizer_class.META_PARAMETER_GROUPS)
  result["groups"], result["total"] = rows, total
  result["at_start"] = total["below_resolution"]
  if total["below_resolution"]:
    result["verdict"] = ("at its start (every change below float32 "
                         "resolution; largest %.3g)" %
                         total["largest_change"])
    return
  moved = max(rows, key=lambda r: r["relative"] or 0.)
  result["verdict"] = (
      "%s %s of its norm from its recorded start (most: %s, %s)" %
      ("effectively at its start: moved" if total["relative"] is not None and
       total["relative"] < EFFECTIVELY_UNMOVED else "moved",
       _percent(total["relative"]), moved["name"],
       _percent(moved["relative"])))


def _compare_with_initialisers(result, values, optimizer_settings, slots):
  """What a checkpoint without a recorded start proves about its start."""
  try:
    constants, random_names = initial_constants(optimizer_settings)
  except (ValueError, TypeError) as e:
    constants, random_names = {}, []
    result["note"] = "could not build the optimizer to read its initialisers: %s" % e
  rows = []
  for name in sorted(n for n in constants if n in values):
    constant = np.asarray(constants[name], np.float64)
    change = np.abs(np.asarray(values[name], np.float64) - constant)
    unique = np.unique(constant)
    rows.append({"name": name,
                 "constant": (float(unique[0]) if len(unique) == 1 else None),
                 "scalars": int(np.size(constant)),
                 "largest_change": float(np.max(change, initial=0.)),
                 "below_resolution": below_resolution(values[name],
                                                      constant)})
  result["constants"] = rows
  result["random_variables"] = [n for n in random_names if n in values]
  result["slots"] = slots
  evidence = []
  constants_still = bool(rows) and all(r["below_resolution"] for r in rows)
  if rows:
    evidence.append(constants_still)
  momentum = slots.get("momentum")
  if momentum:
    evidence.append(momentum["max_abs"] <= resolution(0.))
  mean_square = slots.get("mean_square")
  if mean_square:
    evidence.append(mean_square["max_deviation"] <= _ZERO_GRADIENT_TOLERANCE)
  result["at_start"] = bool(evidence) and all(evidence)
  if result["at_start"]:
    result["verdict"] = ("at its initialisation (every change below float32 "
                         "resolution)")
  elif not evidence:
    result["verdict"] = ("unknown: no recorded start, no constant "
                         "initialiser and no meta-optimizer slot to compare "
                         "with")
  else:
    largest = max([r["largest_change"] for r in rows] or [0.])
    result["verdict"] = (
        "moved from its initialisation (largest change of a constant-"
        "initialised meta-parameter %.3g%s)" % (
            largest, "; last meta-update step up to %.3g" %
            momentum["max_abs"] if momentum else ""))


def _percent(fraction):
  return "n/a" if fraction is None else "%.3g %%" % (100. * fraction)


def format_report(result):
  """The text the program prints for `examine`'s dict."""
  optimizer = result["optimizer"]
  lines = [
      "checkpoint: %s" % result["checkpoint"],
      "optimizer: %s%s, {:,} meta-parameters in %d variables (settings: "
      "%s)".format(optimizer["scalars"]) % (
          optimizer["name"],
          " (%s)" % optimizer["shape"] if optimizer["shape"] else "",
          optimizer["variables"], optimizer["settings"]),
      "meta-optimizer steps (global_step): %s" % _count(
          result["global_step"]),
      "meta-iterations done: %s" % _count(
          result["meta_iterations"],
          "0 (the recorded start)" if result.get("is_start") else
          "not recorded (a checkpoint of the original code, or the start)"),
  ]
  if result["start"] is not None:
    lines.append("recorded start: %s" % result["start"])
    lines.append("")
    lines.append("distance from the recorded start, per group of "
                 "meta-parameters:")
    lines.append("  %-22s %9s %8s %11s %11s %10s %11s" % (
        "group", "variables", "scalars", "|θ-θ0|", "|θ0|", "relative",
        "max change"))
    for row in result["groups"] + [result["total"]]:
      lines.append("  %-22s %9d %8d %11.4g %11.4g %10s %11.3g" % (
          row["name"], row["variables"], row["scalars"], row["distance"],
          row["start_norm"], _percent(row["relative"]),
          row["largest_change"]))
  else:
    lines.append("recorded start: none (%s is not in this folder); what the "
                 "file itself proves:" % checkpoint_files.INITIAL)
    if result.get("note"):
      lines.append("  " + result["note"])
    rows = result["constants"]
    if rows:
      lines.append("")
      lines.append("meta-parameters with a constant initialiser (%d of %d "
                   "variables), distance from it:" % (
                       len(rows), optimizer["variables"]))
      for row in rows:
        constant = ("%g" % row["constant"] if row["constant"] is not None
                    else "(array)")
        lines.append("  %-58s %8s  max |θ-c| %-9.3g %s" % (
            row["name"], constant, row["largest_change"],
            "below float32 resolution" if row["below_resolution"] else
            "CHANGED"))
    if result["random_variables"]:
      lines.append("  (%d variables start at a random draw, which the file "
                   "cannot show)" % len(result["random_variables"]))
    slots = result["slots"]
    if slots:
      lines.append("")
      lines.append("meta-optimizer slots (RMSProp) against their start:")
    if "mean_square" in slots:
      ms = slots["mean_square"]
      lines.append(
          "  mean square (%d slots, start 1): values %.7g to %.7g; with zero "
          "meta-gradients %d updates at decay %g give %.7g (largest "
          "deviation %.3g)" % (ms["slots"], ms["min"], ms["max"],
                               result["global_step"] or 0, DEFAULT_RMS_DECAY,
                               ms["zero_gradient_value"],
                               ms["max_deviation"]))
    if "momentum" in slots:
      m = slots["momentum"]
      lines.append("  momentum (%d slots, start 0; the last meta-update's "
                   "step): largest |value| %.3g" % (m["slots"], m["max_abs"]))
  lines.append("")
  lines.append("verdict: %s" % result["verdict"])
  return "\n".join(lines)


def _count(value, missing="not recorded"):
  return missing if value is None else "%d" % value


def main(argv=None, out=sys.stdout):
  parser = argparse.ArgumentParser(
      prog="python -m optimizer.provenance",
      description="How far meta-training moved a learned optimizer's "
      "meta-parameters from its start.")
  parser.add_argument("path", help="checkpoint prefix, log directory or "
                      "train_dir")
  parser.add_argument("--checkpoint", default="", help="checkpoint file name "
                      "in the directory (default: the latest), e.g. "
                      "model.ckpt-0 or %s" % checkpoint_files.INITIAL)
  parser.add_argument("--json", action="store_true", help="print the "
                      "result as JSON")
  args = parser.parse_args(argv)
  import graph_mode  # pylint: disable=g-import-not-at-top
  tf.logging.set_verbosity(tf.logging.ERROR)
  graph_mode.enable()
  try:
    result = examine(args.path, args.checkpoint)
  except (checkpoints.CheckpointError, ValueError) as e:
    out.flush()
    sys.stderr.write("provenance: %s\n" % e)
    return 1
  out.write((json.dumps(result, indent=1) if args.json else
             format_report(result)) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
