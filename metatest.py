"""Evaluates a learned optimizer (or a baseline): the original's metatest.py.

For every selected problem and every seed, a fresh optimizee is trained for
--num_testing_itrs steps by the optimizer under test; the per-step losses go
to the original's pickle files in --save_dir, with summary.json (statistics
per seed and over seeds), a loss-curve PNG when matplotlib is installed, and
a table on standard output. With --compare_with, other optimizers run on the
same problems, seeds and batches in the same command, and comparison.md
reports them side by side.

Held-out sets (--include_*_heldout_problems) train on a training split and
also record loss and accuracy on the training, validation and test splits
over time. After the last step of every run the Hessian's top eigenvalue and
trace on the training data measure the flatness of the solution. A
learning-rate flag given a list (--adam_learning_rate=1e-4,1e-3,1e-2), and
--init_lr_grid for the learned optimizer, evaluate a grid; the reported
point is chosen by evaluation.tuning.select.

One metatest.py at a time writes to a --save_dir (it holds the folder's
lock). Each seed's files are written, atomically, when the seed finishes;
summary.json, comparison.md and the figures once, at the end. SIGINT
(Ctrl-C) or SIGTERM stops the program with one line and exit status 130 or
143, leaving every file complete and an earlier run's summary.json as it
was. Two runs of the same command write the same pickles, bit for bit
(except on the problem sets with gradient noise, drawn unseeded as in the
original; see the README).

Examples:
  # The original README's evaluation command (the published checkpoint):
  python metatest.py \
      --train_dir=../shared/data/published/l2o-scale-regularize-train/hess_cl_mt \
      --save_dir=hess_cl_mt_eval --include_mnist_mlp_relu_problems \
      --model_name=mnist-relu --restore_model_name=model.ckpt-0 \
      --num_testing_itrs=10000
  # The same, against Adam and SGD in one run:
  python metatest.py ... --compare_with=Adam,SGD
  # Tuned against tuned on held-out Fashion-MNIST:
  python metatest.py --train_dir=... --save_dir=fmnist_eval \
      --include_fashion_mnist_mlp_relu_heldout_problems \
      --num_testing_itrs=10000 --compare_with=Adam,RMSProp \
      --adam_learning_rate=1e-4,3e-4,1e-3,3e-3,1e-2 \
      --rmsprop_learning_rate=1e-4,3e-4,1e-3,3e-3,1e-2
"""

import collections
import contextlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if __name__ == "__main__":
  # Ctrl-C during the imports (TensorFlow takes seconds): one line.
  from run_control import interrupts as _interrupts  # pylint: disable=g-import-not-at-top
  _interrupts.exit_while_starting("metatest.py")

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags

import graph_mode  # pylint: disable=g-import-not-at-top,wrong-import-position
import optimizer_flags  # pylint: disable=g-import-not-at-top,wrong-import-position
from evaluation import baselines  # pylint: disable=g-import-not-at-top,wrong-import-position
from evaluation import metrics  # pylint: disable=g-import-not-at-top,wrong-import-position
from evaluation import tuning  # pylint: disable=g-import-not-at-top,wrong-import-position
from optimizer import settings  # pylint: disable=g-import-not-at-top,wrong-import-position
from run_control import atomic  # pylint: disable=g-import-not-at-top,wrong-import-position
from run_control import interrupts  # pylint: disable=g-import-not-at-top,wrong-import-position
from run_control import lock  # pylint: disable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS

PROGRAM = "metatest.py"
LEARNED = "L2o"
# Samples per split of the intermediate held-out points: a recording of the
# conv net on 3 x 2,000 samples takes about 0.5 s on 2 cores (about 7% of a
# 10,000-step run at 50 points), on 20,000 about 1.6 s.
METRICS_SUBSET = 5000
CONV_METRICS_SUBSET = 2000
# The learned optimizers with initial per-coordinate learning rates
# (--min_lr, --max_lr), the hyper-parameter --init_lr_grid tunes.
INITIAL_LR_OPTIMIZERS = ("HierarchicalRNN", "CoordinatewiseRNN")
# Training samples of the Hessian estimates of conv nets (bounded cost: one
# Hessian-vector product over 2,000 samples of the evaluation conv net takes
# about 1.4 s on 2 cores, over 10,000 about 7 s; see bench/RESULTS.md).
CONV_HESSIAN_SAMPLES = 2000
# Seeds lie in [0, SEED_LIMIT), the range of NumPy's RandomState.
SEED_LIMIT = 2**32
# Problem sets the original program defined flags for but never built.
MISSING_SETS = ("mnist_conv_wider", "mnist_conv_4layers",
                "cifar10_conv_4layers", "vgg16")

def define_flags(flag_values=None):
  """Defines every flag of this program in `flag_values` (default: FLAGS).

  Only the program itself defines them in absl's global registry (when run
  as a script), so that metarun.py and this module can be imported
  together.
  """
  fv = FLAGS if flag_values is None else flag_values
  from problems import problem_sets  # pylint: disable=g-import-not-at-top
  unused = "Unused by evaluation (kept so that the original's commands run)."
  # metatest.py
  flags.DEFINE_string(
      "train_dir", "opt/", "Parent of the log directory <train_dir>/"
      "<optimizer>_<cell_cls>_<cell_size>_<num_cells> holding the learned "
      "optimizer's checkpoints.", flag_values=fv)
  flags.DEFINE_string("save_dir", "opt/", "Output folder (created if "
                      "missing).", flag_values=fv)
  flags.DEFINE_string("test_optimizer", LEARNED, "Optimizer to test: %s." %
                      ", ".join((LEARNED,) + baselines.NAMES), flag_values=fv)
  flags.DEFINE_integer("num_testing_itrs", 100, "Optimizer steps per seed.",
                       flag_values=fv)
  flags.DEFINE_string("model_name", "mt", "Suffix of the output file names.",
                      flag_values=fv)
  flags.DEFINE_string("restore_model_name", "", "Checkpoint file name in the "
                      "log directory (empty: its latest checkpoint).",
                      flag_values=fv)
  optimizer_flags.define(fv)
  for stem, entry in problem_sets.EVALUATION_CHOICES.items():
    flags.DEFINE_boolean(problem_sets.flag_name(stem), False,
                         "Evaluate on problem_sets.%s%s." % (
                             entry.name, " (held-out splits)" if entry.heldout
                             else ""), flag_values=fv)
  for stem in MISSING_SETS:
    flags.DEFINE_boolean(problem_sets.flag_name(stem), False,
                         "Defined by the original, which has no such set; "
                         "rejected.", flag_values=fv)
  # Flags of the original program that evaluation never reads.
  for name, default in (("task", 0), ("worker_tasks", 1), ("num_problems", 1),
                        ("num_meta_iterations", 5), ("num_unroll_scale", 10),
                        ("min_num_unrolls", 4),
                        ("num_partial_unroll_itr_scale", 50),
                        ("min_num_itr_partial_unroll", 10), ("ps_tasks", 0)):
    flags.DEFINE_integer(name, default, unused, flag_values=fv)
  for name, default in (("meta_learning_rate", 1e-6),
                        ("gradient_clip_level", 1e4), ("nan_l2_reg", 1e-2),
                        ("l2_reg", 0.), ("rms_decay", 0.9),
                        ("rms_epsilon", 1e-20), ("l2_reg_scale", 1e-3)):
    flags.DEFINE_float(name, default, unused, flag_values=fv)
  for name, default in (("set_profiling", False), ("reset_rnn_params", True)):
    flags.DEFINE_boolean(name, default, unused, flag_values=fv)
  # Additions of this port.
  flags.DEFINE_list("seeds", ["6", "12", "18", "24", "30"],
                    "Seeds of the initial parameters (the original hard-coded "
                    "6,12,18,24,30).", flag_values=fv)
  for name, baseline in baselines.BASELINES.items():
    flags.DEFINE_list(baseline.flag, ["%g" % baseline.learning_rate],
                      "Learning rate of the %s baseline; a list is a grid, "
                      "every point run on the same seeds and the reported "
                      "one chosen on validation (held-out sets) or on the "
                      "last 100 training losses." % name, flag_values=fv)
  flags.DEFINE_list("init_lr_grid", [], "Grid of the learned optimizer's "
                    "initial per-coordinate learning rates: entries "
                    "low:high (drawn from that range, as --min_lr/--max_lr) "
                    "or one value (every coordinate starts there); the "
                    "--min_lr:--max_lr range is always a point. Empty: that "
                    "range alone, or, in comparison mode with baseline "
                    "grids of k points, a default grid of k points.",
                    flag_values=fv)
  flags.DEFINE_integer("metrics_every", 0, "Held-out sets: steps between "
                       "recordings of loss and accuracy on the splits (0: "
                       "about %d points per run)." % metrics.DEFAULT_POINTS,
                       flag_values=fv)
  flags.DEFINE_integer("metrics_subset", -1, "Held-out sets: before the last "
                       "step, measure each split on a fixed random subset of "
                       "at most this many samples (0: every sample; -1: "
                       "%d for conv nets, %d otherwise); the last point "
                       "always uses every sample." % (CONV_METRICS_SUBSET,
                                                      METRICS_SUBSET),
                       flag_values=fv)
  flags.DEFINE_boolean("hessian_metrics", True, "After the last step, "
                       "estimate the Hessian's top eigenvalue (Lanczos) and "
                       "trace (Hutchinson) of the loss on the training "
                       "data.", flag_values=fv)
  flags.DEFINE_integer("hessian_lanczos_steps", 30, "Lanczos steps of the "
                       "top eigenvalue and spectral density.", flag_values=fv)
  flags.DEFINE_integer("hessian_trace_probes", 10, "Rademacher probes of the "
                       "Hutchinson trace (its standard error is reported).",
                       flag_values=fv)
  flags.DEFINE_integer("hessian_max_samples", -1, "Training samples the "
                       "Hessian is measured on: a fixed subset of at most "
                       "this many (0: all; -1: %d for conv nets, all "
                       "otherwise)." % CONV_HESSIAN_SAMPLES, flag_values=fv)
  flags.DEFINE_boolean("hessian_spectrum", False, "Also plot the Hessian's "
                       "spectral density (stochastic Lanczos quadrature) of "
                       "the final solutions: hessian_spectrum-<model_name>."
                       "png, one panel per optimizer.", flag_values=fv)
  flags.DEFINE_list("compare_with", [], "Comparison mode: also run these "
                    "optimizers (%s) on the same problems and seeds, and "
                    "print a table." % ", ".join((LEARNED,) + baselines.NAMES),
                    flag_values=fv)
  flags.DEFINE_boolean("seed_batch_order", True, "Draw each seed's minibatch "
                       "order from that seed, so every optimizer sees the "
                       "same batches (the original used NumPy's unseeded "
                       "global generator).", flag_values=fv)
  flags.DEFINE_integer("record_every", 0, "If positive, also pickle the "
                       "original's detailed records every this many steps.",
                       flag_values=fv)
  flags.DEFINE_integer("log_every", 1000, "Steps between progress lines.",
                       flag_values=fv)
  flags.DEFINE_boolean("plot", True, "Write loss_curves-<model_name>.png "
                       "(needs matplotlib).", flag_values=fv)
  flags.DEFINE_string("data_dir", None, "Data folder (default: "
                      "$L2O_DATA_DIR, else ~/.cache/l2o-scale/data).",
                      flag_values=fv)


def parse_flags(argv):
  """(values dict, names given explicitly) of a command line, for tests."""
  flag_values = flags.FlagValues()
  define_flags(flag_values)
  flag_values(list(argv))
  return ({name: flag_values[name].value for name in flag_values},
          {name for name in flag_values if flag_values[name].present})


class FlagError(ValueError):
  """A flag value that cannot work."""


def optimizer_names(values):
  """The optimizers to run: --test_optimizer, then --compare_with's."""
  names = [values["test_optimizer"]]
  for name in values["compare_with"]:
    if name not in names:
      names.append(name)
  return names


def seeds(values):
  """--seeds as a list of ints.

  Raises:
    FlagError: not a non-empty list of distinct integers in [0, 2^32) (a
      seed listed twice would run twice into the same files; NumPy's
      generators, which every seed starts, take no other).
  """
  try:
    result = [int(s) for s in values["seeds"]]
  except ValueError:
    raise FlagError("--seeds=%s: expected comma-separated integers, e.g. "
                    "6,12,18,24,30" % ",".join(values["seeds"])) from None
  if not result:
    raise FlagError("--seeds: give at least one seed")
  outside = [s for s in result if not 0 <= s < SEED_LIMIT]
  if outside:
    raise FlagError("--seeds=%s: seed %d is out of range; expected integers "
                    "in [0, 2^32)" % (",".join(values["seeds"]), outside[0]))
  twice = sorted(set(s for s in result if result.count(s) > 1))
  if twice:
    raise FlagError("--seeds=%s: seed%s %s listed more than once; expected "
                    "distinct seeds (each run writes its seed's files)" % (
                        ",".join(values["seeds"]),
                        "s" if len(twice) > 1 else "",
                        " and ".join(str(s) for s in twice) +
                        (" are" if len(twice) > 1 else " is")))
  return result


def validate_flags(values):
  """Checks flag values before anything is built.

  Raises:
    FlagError: with a one-line message naming the flag.
  """
  known = (LEARNED,) + baselines.NAMES
  for name in optimizer_names(values):
    if name not in known:
      flag = ("test_optimizer" if name == values["test_optimizer"]
              else "compare_with")
      raise FlagError("--%s: unknown optimizer %s; expected one of %s" %
                      (flag, name, ", ".join(known)))
  if values["num_testing_itrs"] <= 0:
    raise FlagError("--num_testing_itrs=%d: must be positive" %
                    values["num_testing_itrs"])
  if LEARNED in optimizer_names(values):
    try:
      settings.check(values)
    except settings.SettingError as e:
      raise FlagError("--%s=%s: %s" % (e.name, e.value, e.reason)) from None
  seeds(values)
  for name in baselines.NAMES:
    baseline_grid(values, name)
  initial_learning_rate_grid(values, (values["min_lr"], values["max_lr"]))
  if values["metrics_every"] < 0:
    raise FlagError("--metrics_every=%d: must be >= 0" % values["metrics_every"])
  for flag in ("metrics_subset", "hessian_max_samples"):
    if values[flag] < -1:
      raise FlagError("--%s=%d: must be -1 (automatic), 0 (all) or positive"
                      % (flag, values[flag]))
  for flag in ("hessian_lanczos_steps", "hessian_trace_probes"):
    if values[flag] < 1:
      raise FlagError("--%s=%d: must be positive" % (flag, values[flag]))
  for stem in MISSING_SETS:
    if values["include_%s_problems" % stem]:
      raise FlagError("--include_%s_problems: the original defines this flag "
                      "but has no such problem set" % stem)
  if not selected_problem_sets(values):
    raise FlagError("no problem selected: set an --include_*_problems flag, "
                    "e.g. --include_mnist_mlp_relu_problems")
  if values["record_every"] < 0 or values["log_every"] <= 0:
    raise FlagError("--record_every must be >= 0 and --log_every positive")


def baseline_grid(values, name):
  """The learning-rate grid of baseline `name` (a list of GridPoints).

  Raises:
    FlagError: its flag is not a list of distinct positive numbers.
  """
  try:
    return tuning.parse_learning_rates(values[baselines.BASELINES[name].flag],
                                       baselines.BASELINES[name].flag)
  except ValueError as e:
    raise FlagError(str(e)) from None


def initial_learning_rate_grid(values, original):
  """The learned optimizer's --init_lr_grid, `original` range first.

  Raises:
    FlagError: a malformed entry.
  """
  try:
    return tuning.parse_initial_learning_rates(values["init_lr_grid"],
                                               "init_lr_grid", original)
  except ValueError as e:
    raise FlagError(str(e)) from None


def grids(values, names, optimizer_values, out=sys.stdout):
  """Optimizer name -> its list of GridPoints.

  `optimizer_values` are the learned optimizer's settings (its name, and
  [min_lr, max_lr], the original range of its initial learning rates).

  The learned optimizer's grid is --init_lr_grid (with its original range
  [--min_lr, --max_lr]); when that flag is empty and baselines of the run
  have grids of k > 1 points, it gets a default grid of k points, so that a
  comparison is tuned against tuned on equal budgets. Learned optimizers
  without initial learning rates have a one-point grid.

  Raises:
    FlagError: --init_lr_grid for an optimizer without initial learning
      rates.
  """
  result = {name: baseline_grid(values, name) for name in names
            if name != LEARNED}
  original = (optimizer_values["min_lr"], optimizer_values["max_lr"])
  kind = optimizer_values["optimizer"]
  if LEARNED in names and kind not in INITIAL_LR_OPTIMIZERS:
    if values["init_lr_grid"]:
      raise FlagError("--init_lr_grid: the %s optimizer has no initial "
                      "learning rates to tune (only %s)" % (
                          kind,
                          " and ".join(INITIAL_LR_OPTIMIZERS)))
    result[LEARNED] = [tuning.point(*original)]
  elif LEARNED in names:
    result[LEARNED] = initial_learning_rate_grid(values, original)
    largest = max([len(g) for g in result.values()] + [1])
    if not values["init_lr_grid"] and largest > 1:
      result[LEARNED] = tuning.default_initial_learning_rates(original,
                                                              largest)
      out.write("%s: no --init_lr_grid given; tuning its initial learning "
                "rates over the default %d-point grid %s (the size of the "
                "largest baseline grid)\n" % (
                    LEARNED, largest,
                    ",".join(p.label for p in result[LEARNED])))
  return result


def selected_problem_sets(values):
  """The stems of the enabled include flags, in registry order."""
  from problems import problem_sets  # pylint: disable=g-import-not-at-top
  return [s for s in problem_sets.EVALUATION_CHOICES
          if values[problem_sets.flag_name(s)]]


def log_directory(values):
  """<train_dir>/<optimizer>_<cell_cls>_<cell_size>_<num_cells>."""
  return os.path.join(values["train_dir"],
                      settings.log_directory_name(values))


def learned_optimizer_settings(values, explicit, out=sys.stdout):
  """The optimizer settings for the learned optimizer.

  The log directory's optimizer.json (written by metarun.py when its run
  started) records the settings the checkpoints were trained with, and
  they are used: a flag that contradicts one the optimizer is built from
  (`settings.used_names`) would evaluate another optimizer than the one
  trained (silently, for settings that do not change shapes, such as
  --max_lr), so the file wins and a line says so; other initial learning
  rates are what --init_lr_grid evaluates. Without the file (the published
  checkpoint, or the original's runs) the flags alone decide, as in the
  original.

  Args:
    values: the flag values.
    explicit: names of the flags given on the command line.
    out: where the notes about recorded settings go.

  Raises:
    FlagError: optimizer.json is damaged or hand-edited wrongly (the
      message names the file and the setting).
  """
  logdir = log_directory(values)
  try:
    recorded = settings.load(logdir)
  except ValueError as e:
    raise FlagError("--train_dir: %s" % e) from None
  result = {name: values[name] for name in settings.NAMES}
  if recorded is None:
    return result
  path = os.path.join(logdir, settings.CONFIG_FILE)
  differing = settings.differences(recorded, result)
  contradicted = [name for name in differing if name in explicit]
  taken = [name for name in differing if name not in explicit]
  if taken:
    out.write("using the optimizer settings recorded in %s: %s\n" % (
        path, ", ".join("%s=%s" % (n, recorded[n]) for n in taken)))
  if contradicted:
    out.write(
        "warning: %s contradict%s %s, which records the settings the "
        "checkpoints were trained with; using %s (--init_lr_grid evaluates "
        "other initial learning rates)\n" % (
            ", ".join("--%s=%s" % (n, values[n]) for n in contradicted),
            "s" if len(contradicted) == 1 else "", path,
            ", ".join("%s=%s" % (n, recorded[n]) for n in contradicted)))
  return recorded


def check_learned_optimizer(values, optimizer_values):
  """Resolves and checks the checkpoint before any run starts.

  Returns:
    The checkpoint path.

  Raises:
    FlagError: no log directory, no such checkpoint, or one written by an
      optimizer of another shape.
  """
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  from optimizer import checkpoints  # pylint: disable=g-import-not-at-top
  logdir = log_directory(values)
  if not os.path.isdir(logdir):
    raise FlagError(
        "--train_dir=%s: no log directory %s (expected <train_dir>/"
        "<optimizer>_<cell_cls>_<cell_size>_<num_cells> as metarun.py writes "
        "it)" % (values["train_dir"], logdir))
  try:
    path = checkpoints.resolve_checkpoint(logdir,
                                          values["restore_model_name"])
    with tf.Graph().as_default():
      settings.optimizer_spec(optimizer_values).build()
      checkpoints.check_compatible(path, checkpoints.meta_variables())
  except checkpoints.CheckpointError as e:
    raise FlagError("--restore_model_name: %s" % e) from None
  return path


def problem_entries(values):
  """A `_Problem` for every selected problem, in registry order.

  Raises:
    FlagError: a problem set that cannot be built as its flag asks.
    data_files.DataNotFoundError, data_files.DataFileError: its data are
      missing or unreadable.
  """
  from evaluation import runner  # pylint: disable=g-import-not-at-top
  from problems import data_files  # pylint: disable=g-import-not-at-top
  from problems import problem_sets  # pylint: disable=g-import-not-at-top
  from problems import problem_spec  # pylint: disable=g-import-not-at-top
  entries = []
  for stem in selected_problem_sets(values):
    problem_set = problem_sets.EVALUATION_CHOICES[stem]
    try:
      problems = problem_set.problems(values["data_dir"])
    except data_files.DataFileError:
      raise  # A file's fault, not the flag's: main reports it as it is.
    except ValueError as e:
      raise FlagError("--%s: %s" % (problem_sets.flag_name(stem), e)) from None
    for i, (spec, dataset, batch_size) in enumerate(problems):
      label = stem if len(problems) == 1 else "%s_%d" % (stem, i)
      splits = dataset if problem_set.heldout else None
      # Every run rebuilds the problem in its own graph from the same NumPy
      # seed, so all optimizers and seeds see the same problem.
      seeded = problem_spec.Spec(runner.build_with_numpy_seed,
                                 (spec, 1000 + len(entries)), {})
      entries.append(_Problem(
          label, seeded, splits.train if splits else dataset, batch_size,
          splits, problem_set.conv))
  return entries


def record_file(save_dir, optimizer_name, values, seed, label, several,
                grid_point=None):
  """The original's pickle name, in a sub-folder for compared optimizers.

  The test optimizer's files keep the original's names in --save_dir; the
  others go to <save_dir>/<optimizer>/; with several problems the problem's
  label is appended, and for a grid of several points "-lr<point>", so
  that files do not overwrite each other.
  """
  folder = save_dir
  if optimizer_name != values["test_optimizer"]:
    folder = os.path.join(save_dir, optimizer_name)
  name = "seed%d_eval_loss_record.pickle-%s" % (seed, values["model_name"])
  if several:
    name += "-" + label
  if grid_point is not None:
    name += "-lr" + grid_point.label.replace(":", "_")
  return os.path.join(folder, name)


def metrics_file(record_path):
  """The per-seed JSON file beside a pickle of `record_file`."""
  folder, name = os.path.split(record_path)
  return os.path.join(folder, name.replace("_eval_loss_record.pickle-",
                                           "_metrics-") + ".json")


def optimizer_factory(name, optimizer_values, seed, grid_point):
  """A function building the optimizer `name` at `grid_point`.

  For the learned optimizer the point sets the range of its initial
  per-coordinate learning rates (--min_lr, --max_lr); the seed also fixes
  their random draw, so a seed's run is reproducible.
  """
  if name == LEARNED:
    point_values = dict(optimizer_values, min_lr=grid_point.low,
                        max_lr=grid_point.high)
    return settings.optimizer_spec(point_values, random_seed=seed).build
  return baselines.make_baseline(name, grid_point.low)


def metrics_subset(values, problem):
  """--metrics_subset resolved for `problem`: a sample count or None."""
  subset = values["metrics_subset"]
  if subset < 0:
    subset = CONV_METRICS_SUBSET if problem.is_conv_net else METRICS_SUBSET
  return subset or None


def measurements(values, problem):
  """The runner's `metrics` and `curvature` arguments for a `_Problem`."""
  chunk = 500 if problem.is_conv_net else 10000
  splits = problem.splits
  metrics_config = None
  if splits is not None:
    every = (values["metrics_every"] or
             metrics.default_interval(values["num_testing_itrs"]))
    metrics_config = metrics.Config(
        splits=splits._asdict(), every=every,
        subset=metrics_subset(values, problem), chunk_size=chunk)
  curvature = None
  if values["hessian_metrics"]:
    max_samples = values["hessian_max_samples"]
    if max_samples < 0:
      max_samples = CONV_HESSIAN_SAMPLES if problem.is_conv_net else 0
    curvature = {"lanczos_steps": values["hessian_lanczos_steps"],
                 "num_probes": values["hessian_trace_probes"],
                 "max_samples": max_samples or None,
                 "chunk_size": chunk}
  return metrics_config, curvature


@contextlib.contextmanager
def _locked_save_dir(values):
  """A block holding the lock of --save_dir (created if needed).

  Raises:
    FlagError: the folder cannot be created or locked.
    lock.LockError: another process holds the lock (the message names it).
  """
  save_dir = values["save_dir"]
  try:
    os.makedirs(save_dir, exist_ok=True)
    held = lock.DirectoryLock(save_dir, PROGRAM).acquire()
  except OSError as e:
    raise FlagError("--save_dir: cannot create or lock %s (%s)" %
                    (save_dir, e.strerror or e)) from None
  try:
    yield
  finally:
    held.release()


def _make_output_folders(values, names, out):
  """Creates the compared optimizers' sub-folders; clears leftovers.

  Call while holding the lock of --save_dir: the temporary files that a
  killed run left in these folders are deleted (and named on `out`).

  Raises:
    FlagError: a folder cannot be created.
  """
  save_dir = values["save_dir"]
  folders = [save_dir] + [os.path.join(save_dir, name) for name in names
                          if name != values["test_optimizer"]]
  removed = []
  try:
    for folder in folders:
      os.makedirs(folder, exist_ok=True)
      removed += [os.path.join(folder, name)
                  for name in atomic.remove_leftovers(folder)]
  except OSError as e:
    raise FlagError("--save_dir: cannot create %s (%s)" %
                    (folder, e.strerror or e)) from None
  if removed:
    out.write("removed %d temporary file%s of an interrupted run: %s\n" % (
        len(removed), "s" if len(removed) > 1 else "", ", ".join(removed)))


class _Problem(collections.namedtuple("_Problem", [
    "label", "spec", "dataset", "batch_size", "splits", "is_conv_net"])):
  """One evaluation problem.

  `spec` builds it with a fixed NumPy seed; `dataset` is what the
  optimizee trains on; `splits` the held-out `datasets.Splits` or None.
  """


def _evaluate(values, job, checkpoint, problem, out, written=None):
  """One test run; returns (its summary.json statistics, its TestRun).

  Its files (the pickle, the detailed records, the measurements' JSON) are
  written when it has finished, each atomically and all in a block that a
  SIGINT or SIGTERM does not interrupt (the signal is raised after it): a
  seed's files are there and complete, or not there. `written`, a function
  of no arguments, is called at the end of that block.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  from evaluation import runner  # pylint: disable=g-import-not-at-top
  from evaluation import summary  # pylint: disable=g-import-not-at-top
  metrics_config, curvature = measurements(values, problem)
  test_run = runner.test_optimizer(
      optimizer_factory(job.name, job.optimizer_values, job.seed, job.point),
      problem.spec, values["num_testing_itrs"], dataset=problem.dataset,
      batch_size=problem.batch_size, seed=job.seed,
      logdir=checkpoint if job.name == LEARNED else None,
      record_every=values["record_every"] or None,
      options=runner.RunOptions(
          batch_rng=(np.random.RandomState(job.seed)
                     if values["seed_batch_order"] else None),
          log=lambda line: (out.write(line + "\n"), out.flush()),
          log_every=values["log_every"], metrics=metrics_config,
          curvature=curvature))
  measured_file = None
  if test_run.metrics is not None or test_run.curvature is not None:
    measured_file = metrics_file(job.path)
  with interrupts.deferred():
    summary.write_loss_record(job.path, test_run.objective_values)
    if test_run.records:
      summary.write_pickle(
          job.path.replace("_eval_loss_record.", "_records."),
          test_run.records)
    if measured_file is not None:
      summary.write_seed_metrics(
          measured_file, job.seed, test_run.metrics, test_run.final_metrics,
          test_run.curvature, test_run.metrics_subset)
    if written is not None:
      written()
  relative = lambda p: p and os.path.relpath(p, values["save_dir"])
  stats = summary.seed_statistics(
      job.seed, test_run.objective_values, test_run.final_objective,
      test_run.seconds_per_step, relative(job.path),
      heldout=test_run.final_metrics, curvature=test_run.curvature,
      metrics_file=relative(measured_file))
  _report_seed(out, stats, job.path)
  return stats, test_run


def _number(value, spec="%s"):
  """A number of summary.json's per-seed entry for the progress line; its
  null (a NaN or infinity: a diverged run) reads "non-finite"."""
  return "non-finite" if value is None else spec % value


def _report_seed(out, stats, path):
  line = "  final loss %s (last-100 mean %s), whole-data loss %s" % (
      _number(stats["final_loss"]), _number(stats["final_loss_last100"]),
      _number(stats["final_full_loss"]))
  heldout = stats.get("heldout")
  if heldout:
    line += ", validation loss %s, test loss %s, test accuracy %s" % (
        _number(heldout["validation_loss"], "%.5g"),
        _number(heldout["test_loss"], "%.5g"),
        _number(heldout["test_accuracy"], "%.4f"))
  curvature = stats.get("curvature")
  if curvature:
    line += ", top Hessian eigenvalue %s, trace %s" % (
        _number(curvature["top_eigenvalue"], "%.4g"),
        _number(curvature["trace"], "%.4g"))
  if not stats["finite"]:
    line += " (diverged: never chosen)"
  out.write("%s, %.2f ms/step -> %s\n" % (
      line, 1e3 * (stats["seconds_per_step"] or 0.), path))
  out.flush()


class _Job(collections.namedtuple("_Job", [
    "name", "point", "seed", "path", "optimizer_values"])):
  """One run: optimizer `name` at grid `point` with `seed`, into `path`."""


def _selection_entry(problem, name, points, choice):
  return {"problem": problem, "optimizer": name, "rule": choice.rule,
          "grid": [p.label for p in points], "scores": choice.scores,
          "diverged": [p.label for p, score in zip(points, choice.scores)
                       if score is None],
          "chosen": (None if choice.chosen is None
                     else points[choice.chosen].label),
          "at_edge": choice.at_edge}


def _grid_flag(name):
  return "init_lr_grid" if name == LEARNED else baselines.BASELINES[name].flag


def _result_entry(name, problem_label, checkpoint, point, several):
  return {"optimizer": name, "problem": problem_label,
          "checkpoint": checkpoint if name == LEARNED else None,
          "learning_rate": None if name == LEARNED else point.low,
          "initial_learning_rates": ([point.low, point.high]
                                     if name == LEARNED else None),
          "grid_point": point.label, "grid_size": several, "chosen": False,
          "per_seed": []}


def _describe_measurements(values, problem, out):
  """One line saying what is measured besides the training losses."""
  metrics_config, curvature = measurements(values, problem)
  parts = []
  if metrics_config is not None:
    parts.append(
        "loss and accuracy on %s every %d steps (%s) and on every sample "
        "after the last step" % (
            "/".join(metrics_config.splits), metrics_config.every,
            "each split on a fixed subset of at most %d samples" %
            metrics_config.subset if metrics_config.subset
            else "every sample"))
  if curvature is not None:
    parts.append(
        "after the last step the Hessian's top eigenvalue (%d Lanczos "
        "steps) and trace (%d probes) on %s" % (
            curvature["lanczos_steps"], curvature["num_probes"],
            "a fixed subset of %d training samples" % curvature["max_samples"]
            if curvature["max_samples"] else "the whole training data"))
  if parts:
    out.write("%s: measuring %s\n" % (problem.label, "; ".join(parts)))


class RunInterrupted(Exception):
  """SIGINT or SIGTERM stopped the runs; str() is the line to print.

  Attributes:
    exit_status: 128 + the signal's number (130 or 143).
  """

  def __init__(self, interrupted, finished, total, written=False):
    if written:
      line = ("interrupted (%s) after all %d runs and their summary; every "
              "file is complete" % (interrupted, total))
    else:
      line = ("interrupted (%s) after %d of %d runs; the finished runs' "
              "files are complete, summary.json is left as it was (it is "
              "written at the end); rerun the same command to redo the rest"
              % (interrupted, finished, total))
    super().__init__(line)
    self.exit_status = interrupted.exit_status


class _Evaluation(object):
  """The runs of one metatest.py command and what they produced.

  Attributes:
    results: summary.json's result entries, one per (problem, optimizer,
      grid point), in run order.
    selection: summary.json's selection entries.
    runs: id(result) -> its `runner.TestRun`s, one per seed.
    warnings: lines repeated after the table.
    finished: the runs whose files are written.
    written: whether summary.json and the other files over all runs are.
  """

  def __init__(self, values, seed_list, total, checkpoint, several_problems,
               out):
    from evaluation import summary  # pylint: disable=g-import-not-at-top
    self._summary = summary
    self._values, self._out = values, out
    self._seeds, self._total, self._done = seed_list, total, 0
    self._checkpoint = checkpoint
    self._several_problems = several_problems
    self.results, self.selection, self.runs, self.warnings = [], [], {}, []
    self.finished, self.written = 0, False

  def _warn(self, line):
    self.warnings.append(line)
    self._out.write(line + "\n")

  def _count_written(self):
    self.finished += 1

  def run_point(self, problem, name, point, grid_size, optimizer_values):
    """Every seed of optimizer `name` at `point` on `problem`."""
    result = _result_entry(name, problem.label, self._checkpoint, point,
                           grid_size)
    self.results.append(result)
    self.runs[id(result)] = []
    for seed in self._seeds:
      self._done += 1
      self._out.write("[%d/%d] testing %s with %s%s using seed %d\n" % (
          self._done, self._total, problem.label, name,
          " (%s %s)" % ("initial learning rates" if name == LEARNED else
                        "learning rate", point.label) if grid_size > 1
          else "", seed))
      self._out.flush()
      job = _Job(name, point, seed,
                 record_file(self._values["save_dir"], name, self._values,
                             seed, problem.label, self._several_problems,
                             point if grid_size > 1 else None),
                 optimizer_values)
      stats, test_run = _evaluate(self._values, job, self._checkpoint,
                                  problem, self._out, self._count_written)
      result["per_seed"].append(stats)
      self.runs[id(result)].append(test_run)
      if test_run.metrics is not None:
        result["history"] = self._summary.aggregate_history(
            [r.metrics for r in self.runs[id(result)]])
    return result

  def choose(self, problem, name, points, entries):
    """Marks the chosen grid point of `name` on `problem` (tuning.select)."""
    choice = tuning.select(points, [e["per_seed"] for e in entries],
                           problem.splits is not None)
    if choice.chosen is not None:
      entries[choice.chosen]["chosen"] = True
    self.selection.append(_selection_entry(problem.label, name, points,
                                           choice))
    warning = tuning.edge_warning(name, problem.label, points, choice,
                                  _grid_flag(name))
    if warning:
      self._warn(warning)
    if choice.chosen is None:
      self._warn("warning: %s on %s: every grid point diverged" %
                 (name, problem.label))


def run(values, explicit=(), out=sys.stdout):
  """Evaluates as the flag values say; returns the summary.json path.

  Every flag, the checkpoint and the data are checked before anything is
  written. The runs then hold the lock of --save_dir (one metatest.py per
  folder); each seed's files are written atomically when it finishes, and
  summary.json, comparison.md and the figures once, at the end, so that an
  interrupted run leaves the files of an earlier complete run as they were
  (except the seeds' files it rewrote).

  Args:
    values: dict flag name -> value.
    explicit: names of the flags set on the command line.
    out: progress and result stream.

  Raises:
    FlagError: a flag value that cannot work (the message names it).
    lock.LockError: another process holds the lock of --save_dir.
    data_files.DataNotFoundError, data_files.DataFileError: data missing or
      unreadable.
    checkpoints.CheckpointError: a checkpoint that cannot be read.
    RunInterrupted: SIGINT or SIGTERM (inside `interrupts.handling()`)
      after the runs started.
  """
  validate_flags(values)
  names = optimizer_names(values)
  optimizer_values = learned_optimizer_settings(values, explicit, out)
  checkpoint = None
  if LEARNED in names:
    checkpoint = check_learned_optimizer(values, optimizer_values)
  grid = grids(values, names, optimizer_values, out)
  problems = problem_entries(values)
  with _locked_save_dir(values):
    _make_output_folders(values, names, out)
    graph_mode.enable()
    import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
    tf.logging.set_verbosity(tf.logging.ERROR)
    seed_list = seeds(values)
    total = len(problems) * len(seed_list) * sum(len(grid[n]) for n in names)
    evaluation = _Evaluation(values, seed_list, total, checkpoint,
                             len(problems) > 1, out)
    try:
      for problem in problems:
        _describe_measurements(values, problem, out)
        for name in names:
          entries = [evaluation.run_point(problem, name, point,
                                          len(grid[name]), optimizer_values)
                     for point in grid[name]]
          evaluation.choose(problem, name, grid[name], entries)
      return _write_results(values, names, grid, seed_list, evaluation, out)
    except interrupts.Interrupted as e:
      raise RunInterrupted(e, evaluation.finished, total,
                           evaluation.written) from None


def _write_results(values, names, grid, seed_list, evaluation, out):
  """Prints the table; writes summary.json and the files over all runs.

  They are written in one block that SIGINT and SIGTERM do not interrupt,
  summary.json first; each file atomically.

  Returns:
    The summary.json path.
  """
  from evaluation import summary  # pylint: disable=g-import-not-at-top
  save_dir = values["save_dir"]
  header = {
      "command": list(sys.argv),
      "model_name": values["model_name"],
      "num_testing_itrs": values["num_testing_itrs"],
      "seeds": seed_list,
      "seed_batch_order": values["seed_batch_order"],
      "loss_at_steps": summary.loss_steps(values["num_testing_itrs"]),
      "grids": {name: [p.label for p in grid[name]] for name in names},
  }
  text = summary.json_text(summary.make_summary(header, evaluation.results,
                                                evaluation.selection))
  # What a reader of summary.json gets (the table and comparison.md are
  # made from the file's content).
  document = json.loads(text)
  out.write("\n%s\n\n" % summary.table(document["results"]))
  for warning in evaluation.warnings:
    out.write(warning + "\n")
  lines = []
  with interrupts.deferred():
    summary_path = summary.summary_path(save_dir)
    atomic.write_text(summary_path, text)
    lines.append("summary: %s" % summary_path)
    if len(names) > 1:
      from evaluation import report  # pylint: disable=g-import-not-at-top
      lines.append("comparison: %s" % report.write_comparison(save_dir,
                                                              document))
    if values["plot"]:
      lines += _plot(values, evaluation.results, evaluation.runs,
                     len(seed_list))
    evaluation.written = True
  for line in lines:
    out.write(line + "\n")
  return summary_path


def _plot(values, results, curves, num_seeds):
  """Writes the figures of the chosen grid points (a curve per optimizer).

  Returns:
    The lines reporting them.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  from evaluation import plot  # pylint: disable=g-import-not-at-top
  if not plot.available():
    return ["plot: skipped (matplotlib is not installed)"]
  losses, heldout, spectra = {}, {}, {}
  for result in results:
    if not result["chosen"]:
      continue
    label = result["optimizer"]
    if result["grid_size"] > 1:
      label += " (%s)" % result["grid_point"]
    runs = curves[id(result)]
    losses.setdefault(result["problem"], {})[label] = [
        r.objective_values for r in runs]
    if runs[0].metrics is not None:
      heldout.setdefault(result["problem"], {})[label] = [
          r.metrics for r in runs]
    # A chosen point's losses are finite, but its Hessian may not be.
    if runs[0].curvature is not None and all(
        np.all(np.isfinite(r.curvature.ritz_values)) for r in runs):
      spectra.setdefault(result["problem"], {})[label] = [
          (r.curvature.ritz_values, r.curvature.weights) for r in runs]
  model = values["model_name"]
  title = "model %s, %d seeds" % (model, num_seeds)
  folder = values["save_dir"]
  written = [plot.plot_loss_curves(
      os.path.join(folder, "loss_curves-%s.png" % model), losses,
      title=title)]
  if heldout:
    written.append(plot.plot_heldout_curves(
        os.path.join(folder, "heldout_curves-%s.png" % model), heldout,
        title=title + "; before the last step each split is measured on a "
        "fixed subset (--metrics_subset)"))
  if values["hessian_spectrum"] and spectra:
    for problem, by_optimizer in spectra.items():
      suffix = "-" + problem if len(spectra) > 1 else ""
      written.append(plot.plot_hessian_spectra(
          os.path.join(folder, "hessian_spectrum-%s%s.png" % (model, suffix)),
          by_optimizer, title="%s: %s" % (problem, title)))
  return ["plot: %s" % path for path in written]


def main(argv):
  if len(argv) > 1:
    sys.exit("%s: unexpected arguments %s" % (PROGRAM, " ".join(argv[1:])))
  values = {name: FLAGS[name].value for name in FLAGS}
  explicit = {name for name in FLAGS if FLAGS[name].present}
  from optimizer import checkpoints  # pylint: disable=g-import-not-at-top
  from problems import data_files  # pylint: disable=g-import-not-at-top
  with interrupts.handling():
    try:
      run(values, explicit)
    except (FlagError, lock.LockError, data_files.DataNotFoundError,
            data_files.DataFileError, checkpoints.CheckpointError) as e:
      sys.exit("%s: %s" % (PROGRAM, e))
    except RunInterrupted as e:
      _exit_interrupted(str(e), e.exit_status)
    except interrupts.Interrupted as e:
      _exit_interrupted("interrupted (%s) before the first run; no result "
                        "file was written" % e, e.exit_status)
    except Exception as e:  # pylint: disable=broad-except
      if not atomic.is_disk_full(e):
        raise
      # Each file is written atomically: a failed write leaves the old one.
      sys.exit("%s: no space left on device in %s; the finished runs' files "
               "are complete, summary.json is left as it was: free some "
               "space and rerun the same command" % (PROGRAM,
                                                     values["save_dir"]))


def _exit_interrupted(line, status):
  sys.stderr.write("%s: %s\n" % (PROGRAM, line))
  sys.stderr.flush()
  sys.exit(status)


if __name__ == "__main__":
  define_flags()
  app.run(main)
