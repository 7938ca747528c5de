"""The optimizers of an evaluation campaign and their grids.

The learned optimizer is rebuilt from the settings its checkpoints were
trained with (`learned_settings`) and restored from a checkpoint checked
before any run starts (`checkpoint`); every optimizer gets a grid of
hyper-parameter points (`grids`: learning rates for a baseline, ranges of
initial per-coordinate learning rates for the learned optimizer), and
`factory` builds the optimizer of one run at one point.
"""

import os
import sys

import tensorflow.compat.v1 as tf

from evaluation import baselines
from evaluation import tuning
from evaluation.config import LEARNED
from evaluation.config import SettingError
from optimizer import checkpoints
from optimizer import settings as settings_lib

# The flag of the learned optimizer's grid (config.Optimizers
# .initial_learning_rates).
INITIAL_LR_FLAG = "init_lr_grid"


def log_directory(train_dir, optimizer_settings):
  """<train_dir>/<optimizer>_<cell_cls>_<cell_size>_<num_cells>."""
  return os.path.join(train_dir,
                      settings_lib.log_directory_name(optimizer_settings))


def learned_settings(optimizers, out=sys.stdout):
  """The settings the learned optimizer is built with.

  The log directory's optimizer.json (written by metarun.py when its run
  started) records the settings the checkpoints were trained with, and
  they are used: a setting that contradicts one the optimizer is built from
  (`settings.used_names`) would evaluate another optimizer than the one
  trained (silently, for settings that do not change shapes, such as
  --max_lr), so the file wins and a line says so; other initial learning
  rates are what --init_lr_grid evaluates. Without the file (the published
  checkpoint, or the original's runs) `optimizers.settings` alone decide,
  as in the original.

  Args:
    optimizers: a `config.Optimizers`.
    out: where the notes about recorded settings go.

  Returns:
    dict setting name -> value.

  Raises:
    SettingError: optimizer.json is damaged or hand-edited wrongly (the
      message names the file and the setting).
  """
  given = optimizers.settings
  logdir = log_directory(optimizers.train_dir, given)
  try:
    recorded = settings_lib.load(logdir)
  except ValueError as e:
    raise SettingError("--train_dir: %s" % e) from None
  result = {name: given[name] for name in settings_lib.NAMES}
  if recorded is None:
    return result
  path = os.path.join(logdir, settings_lib.CONFIG_FILE)
  differing = settings_lib.differences(recorded, result)
  contradicted = [n for n in differing if n in optimizers.explicit_settings]
  taken = [n for n in differing if n not in optimizers.explicit_settings]
  if taken:
    out.write("using the optimizer settings recorded in %s: %s\n" % (
        path, ", ".join("%s=%s" % (n, recorded[n]) for n in taken)))
  if contradicted:
    out.write(
        "warning: %s contradict%s %s, which records the settings the "
        "checkpoints were trained with; using %s (--init_lr_grid evaluates "
        "other initial learning rates)\n" % (
            ", ".join("--%s=%s" % (n, given[n]) for n in contradicted),
            "s" if len(contradicted) == 1 else "", path,
            ", ".join("%s=%s" % (n, recorded[n]) for n in contradicted)))
  return recorded


def checkpoint(optimizers, optimizer_settings):
  """Resolves and checks the learned optimizer's checkpoint.

  Args:
    optimizers: a `config.Optimizers`.
    optimizer_settings: the settings of `learned_settings`.

  Returns:
    The checkpoint path.

  Raises:
    SettingError: no log directory, no such checkpoint, or one written by
      an optimizer of another shape.
  """
  logdir = log_directory(optimizers.train_dir, optimizer_settings)
  if not os.path.isdir(logdir):
    raise SettingError(
        "--train_dir=%s: no log directory %s (expected <train_dir>/"
        "<optimizer>_<cell_cls>_<cell_size>_<num_cells> as metarun.py writes "
        "it)" % (optimizers.train_dir, logdir))
  try:
    path = checkpoints.resolve_checkpoint(logdir, optimizers.checkpoint_name)
    with tf.Graph().as_default():
      settings_lib.optimizer_spec(optimizer_settings).build()
      checkpoints.check_compatible(path, checkpoints.meta_variables())
  except checkpoints.CheckpointError as e:
    raise SettingError("--restore_model_name: %s" % e) from None
  return path


def grid_flag(name):
  """The flag of optimizer `name`'s grid."""
  return INITIAL_LR_FLAG if name == LEARNED else baselines.BASELINES[name].flag


def baseline_grid(optimizers, name):
  """The learning-rate grid of baseline `name` (a list of GridPoints).

  Raises:
    SettingError: its entries are not distinct positive numbers.
  """
  baseline = baselines.BASELINES[name]
  texts = optimizers.learning_rates.get(name,
                                        ("%g" % baseline.learning_rate,))
  try:
    return tuning.parse_learning_rates(list(texts), baseline.flag)
  except ValueError as e:
    raise SettingError(str(e)) from None


def initial_learning_rate_grid(optimizers, original):
  """The learned optimizer's grid of initial learning rates, `original`
  (its [min_lr, max_lr]) first.

  Raises:
    SettingError: a malformed entry.
  """
  try:
    return tuning.parse_initial_learning_rates(
        list(optimizers.initial_learning_rates), INITIAL_LR_FLAG, original)
  except ValueError as e:
    raise SettingError(str(e)) from None


def grids(optimizers, optimizer_settings, out=sys.stdout):
  """Optimizer name -> its list of GridPoints, for every optimizer to run.

  The learned optimizer's grid is --init_lr_grid with its original range
  [min_lr, max_lr] of `optimizer_settings`; when that grid is empty and
  baselines of the run have grids of k > 1 points, it gets a default grid
  of k points (a line on `out` says so), so that a comparison is tuned
  against tuned on equal budgets. Learned optimizers without initial
  learning rates have a one-point grid.

  Raises:
    SettingError: --init_lr_grid for an optimizer without initial learning
      rates, or a malformed grid.
  """
  names = optimizers.names
  result = {name: baseline_grid(optimizers, name) for name in names
            if name != LEARNED}
  if LEARNED not in names:
    return result
  original = (optimizer_settings["min_lr"], optimizer_settings["max_lr"])
  kind = optimizer_settings["optimizer"]
  if kind not in settings_lib.INITIAL_LR_OPTIMIZERS:
    if optimizers.initial_learning_rates:
      raise SettingError(
          "--init_lr_grid: the %s optimizer has no initial learning rates to "
          "tune (only %s)" % (kind,
                              " and ".join(settings_lib.INITIAL_LR_OPTIMIZERS)))
    result[LEARNED] = [tuning.point(*original)]
    return result
  result[LEARNED] = initial_learning_rate_grid(optimizers, original)
  largest = max([len(g) for g in result.values()] + [1])
  if not optimizers.initial_learning_rates and largest > 1:
    result[LEARNED] = tuning.default_initial_learning_rates(original, largest)
    out.write("%s: no --init_lr_grid given; tuning its initial learning "
              "rates over the default %d-point grid %s (the size of the "
              "largest baseline grid)\n" % (
                  LEARNED, largest,
                  ",".join(p.label for p in result[LEARNED])))
  return result


def factory(name, optimizer_settings, seed, grid_point):
  """A function of no arguments building optimizer `name` at `grid_point`.

  For the learned optimizer the point sets the range of its initial
  per-coordinate learning rates (min_lr, max_lr); the seed also fixes
  their random draw, so a seed's run is reproducible.
  """
  if name == LEARNED:
    point_settings = dict(optimizer_settings, min_lr=grid_point.low,
                          max_lr=grid_point.high)
    return settings_lib.optimizer_spec(point_settings, random_seed=seed).build
  return baselines.make_baseline(name, grid_point.low)
