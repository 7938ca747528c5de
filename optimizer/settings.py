"""The optimizer-shape settings shared by metarun.py, metatest.py and users.

The original defined these as flags in each entry program (same names and
defaults everywhere). Here they are one table, derived from the optimizers'
config classes (optimizer/configs.py) plus a few flag-only rows: the entry
points turn it into absl flags (optimizer_flags.py), `optimizer_spec` maps
values onto a constructor call, and a run's values are recorded next to its
checkpoints (`optimizer.json`) so that evaluation and drop-in use rebuild the
same optimizer. Nothing here reads flags.
"""

import json
import math
import os

from optimizer import configs as optimizer_configs
from problems import problem_spec
from run_control import atomic
from run_control import configs

# The HierarchicalRNN's level sizes are fixed in the original (the cell_size
# and num_cells flags only name the log directory for it).
HRNN_CELL_SIZES = (10, 20, 20)

CONFIG_FILE = "optimizer.json"

# Flags that are no config field: which optimizer, the CoordinatewiseRNN's
# cells, and the (min, max) of the constructors' init_lr_range.
_FLAG_ONLY_ROWS = (
    ("optimizer", str, "HierarchicalRNN", "Learned optimizer class."),
    ("cell_size", int, 20, "Cell size (CoordinatewiseRNN; for "
     "HierarchicalRNN only part of the log directory name)."),
    ("num_cells", int, 2, "Number of cells (as cell_size)."),
    ("cell_cls", str, "GRUCell", "RNN cell class by name."),
    ("min_lr", float, 1e-6, "Lower end of the initial learning rates."),
    ("max_lr", float, 1e-2, "Upper end of the initial learning rates."),
)


def _flag_table():
  """The flag-only rows, then each config's settings (shared ones once)."""
  rows = list(_FLAG_ONLY_ROWS)
  seen = {row[0]: row for row in rows}
  for config_class in (optimizer_configs.HRNNConfig,
                       optimizer_configs.CRNNConfig):
    for row in configs.flag_rows(config_class):
      if row[0] not in seen:
        seen[row[0]] = row
        rows.append(row)
      elif seen[row[0]][1:3] != row[1:3]:
        raise AssertionError("flag %s: %r and %r disagree" %
                             (row[0], seen[row[0]], row))
  return tuple(rows)


# (name, type, default, help). Defaults are the original flags' defaults;
# for use_problem_lr_mean, use_gradient_shortcut and use_grad_products they
# differ from the HierarchicalRNN constructor's, and the flag wins.
FLAG_TABLE = _flag_table()

NAMES = tuple(row[0] for row in FLAG_TABLE)

# Settings that must be positive; every float setting must be finite.
POSITIVE = ("cell_size", "num_cells", "min_lr", "max_lr",
            "num_gradient_scales")
# The optimizers with initial per-coordinate learning rates drawn from
# [min_lr, max_lr].
INITIAL_LR_OPTIMIZERS = ("HierarchicalRNN", "CoordinatewiseRNN")
_CONFIG_CLASSES = {"HierarchicalRNN": optimizer_configs.HRNNConfig,
                   "CoordinatewiseRNN": optimizer_configs.CRNNConfig}
_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number",
               str: "a string"}


class SettingError(ValueError):
  """An optimizer setting of the wrong type or outside its range.

  Attributes:
    name: the setting's name (a FLAG_TABLE name).
    value: its value.
    reason: what is wrong with it, e.g. "must be positive".
  """

  def __init__(self, name, value, reason):
    super().__init__("%s=%r: %s" % (name, value, reason))
    self.name, self.value, self.reason = name, value, reason


def _has_type(value, kind):
  if kind is bool:
    return isinstance(value, bool)
  if isinstance(value, bool):  # JSON true is no number
    return False
  if kind is float:
    return isinstance(value, (int, float))
  return isinstance(value, kind)


def check(values):
  """Checks the types and ranges of the settings in `values`.

  Each setting has its FLAG_TABLE type (an integer passes for a float, a
  bool for neither); float settings are finite; the POSITIVE ones are
  positive, min_lr is at most max_lr; optimizer names a registered
  optimizer and cell_cls an RNN cell. For a hand-edited optimizer.json and
  for flag values alike.

  Args:
    values: dict setting name -> value; settings it lacks are not checked,
      other keys are ignored.

  Raises:
    SettingError: the first bad setting in FLAG_TABLE order.
  """
  from optimizer import registry  # pylint: disable=g-import-not-at-top
  from optimizer import rnn_cells  # pylint: disable=g-import-not-at-top
  choices = {"optimizer": ("optimizer", registry.NAMES),
             "cell_cls": ("cell", sorted(rnn_cells.CELLS))}
  for name, kind, _, _ in FLAG_TABLE:
    if name not in values:
      continue
    value = values[name]
    if not _has_type(value, kind):
      raise SettingError(name, value, "expected %s" % _TYPE_NAMES[kind])
    if kind is float and not math.isfinite(value):
      raise SettingError(name, value, "must be a finite number")
    if name in POSITIVE and value <= 0:
      raise SettingError(name, value, "must be positive")
    if name in choices and value not in choices[name][1]:
      raise SettingError(name, value, "unknown %s; expected one of %s" % (
          choices[name][0], ", ".join(choices[name][1])))
  if "min_lr" in values and "max_lr" in values and (
      values["min_lr"] > values["max_lr"]):
    raise SettingError("min_lr", values["min_lr"], "exceeds max_lr (%r)" %
                       values["max_lr"])


def used_names(values):
  """The settings the optimizer `values["optimizer"]` is built from.

  Two complete settings dicts with the same optimizer and equal values of
  these build the same optimizer; the others (another optimizer's) are
  ignored by it.
  """
  name = values["optimizer"]
  names = ["optimizer"]
  if name in INITIAL_LR_OPTIMIZERS:
    names += ["min_lr", "max_lr"]
  if name == "CoordinatewiseRNN":
    names += ["cell_size", "num_cells", "cell_cls"]
  config_class = _CONFIG_CLASSES.get(
      name, optimizer_configs.TrainableOptimizerConfig)
  names += [configs.flag_name(f) for f in configs.flag_fields(config_class)]
  return tuple(names)


def differences(recorded, values):
  """The settings in which two complete settings dicts describe different
  optimizers: the `used_names` of either whose values differ, in NAMES
  order."""
  used = set(used_names(recorded)) | set(used_names(values))
  return [name for name in NAMES
          if name in used and recorded[name] != values[name]]


def _constructor_kwargs(config_class, values):
  """The setting fields of `config_class`, from flag values."""
  return {field.name: values[configs.flag_name(field)]
          for field in configs.flag_fields(config_class)}


def defaults():
  """A dict of every setting at its original flag default."""
  return {name: default for name, _, default, _ in FLAG_TABLE}


def complete(values):
  """`values` (a dict, possibly partial) with every missing setting filled in.

  Raises:
    ValueError: a key that is not a setting.
  """
  unknown = sorted(set(values) - set(NAMES))
  if unknown:
    raise ValueError("unknown optimizer setting(s) %s; known: %s" %
                     (", ".join(unknown), ", ".join(NAMES)))
  result = defaults()
  result.update(values)
  return result


def optimizer_spec(values, random_seed=None):
  """The `problem_spec.Spec` of the optimizer that `values` describe.

  Args:
    values: dict with (at least) every setting of FLAG_TABLE; other keys are
      ignored.
    random_seed: seed of the optimizer's random draws (initialisers and the
      initial per-coordinate learning rates), for the optimizers that have
      them (HierarchicalRNN, CoordinatewiseRNN); None: unseeded.
  """
  spec = _unseeded_spec(values)
  if random_seed is not None and spec.callable.__name__ in (
      "HierarchicalRNN", "CoordinatewiseRNN"):
    spec = spec._replace(kwargs=dict(spec.kwargs, random_seed=random_seed))
  return spec


def _unseeded_spec(values):
  from optimizer import registry  # pylint: disable=g-import-not-at-top
  name = values["optimizer"]
  cls = registry.optimizer_class(name)
  lr_range = (values["min_lr"], values["max_lr"])
  if name == "HierarchicalRNN":
    kwargs = _constructor_kwargs(_CONFIG_CLASSES[name], values)
    kwargs["init_lr_range"] = lr_range
    return problem_spec.Spec(cls, (list(HRNN_CELL_SIZES),), kwargs)
  if name == "CoordinatewiseRNN":
    kwargs = _constructor_kwargs(_CONFIG_CLASSES[name], values)
    kwargs["init_lr_range"] = lr_range
    return problem_spec.Spec(
        cls, ([values["cell_size"]] * values["num_cells"],
              values["cell_cls"]), kwargs)
  base = _constructor_kwargs(optimizer_configs.TrainableOptimizerConfig,
                             values)
  return problem_spec.Spec(cls, (), base)


def log_directory_name(values):
  """The original's log directory name: <optimizer>_<cell_cls>_<size>_<n>."""
  return "%s_%s_%d_%d" % (values["optimizer"], values["cell_cls"],
                          values["cell_size"], values["num_cells"])


def save(logdir, values):
  """Records the settings in `<logdir>/optimizer.json` (atomically).

  The file says which optimizer the log directory's checkpoints were
  trained with; metarun.py writes it when a run really starts, before its
  first checkpoint, and refuses to resume with settings that differ from
  it.

  Returns:
    The path of the file.
  """
  path = os.path.join(logdir, CONFIG_FILE)
  atomic.write_json(path, {name: values[name] for name in NAMES})
  return path


def load(logdir):
  """The settings recorded in `<logdir>/optimizer.json`, or None if absent.

  The file's settings are checked (`check`): a hand-edited file with an
  unknown optimizer, a value of the wrong type or out of range is refused.

  Raises:
    ValueError: the file is not a JSON object of known, valid settings
      (the one-line message names the file and the setting).
  """
  path = os.path.join(logdir, CONFIG_FILE)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      record = json.load(f)
  except ValueError as e:
    raise ValueError("%s: not valid JSON (%s)" % (path, e)) from None
  if not isinstance(record, dict):
    raise ValueError("%s: expected a JSON object of optimizer settings" %
                     path)
  try:
    values = complete(record)
    check(values)
    return values
  except SettingError as e:
    raise ValueError('%s: "%s": %s: %s' % (
        path, e.name, json.dumps(e.value), e.reason)) from None
  except ValueError as e:
    raise ValueError("%s: %s" % (path, e)) from None
