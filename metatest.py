"""Evaluates a learned optimizer (or a baseline): the original's metatest.py.

For every selected problem and every seed, a fresh optimizee is trained for
--num_testing_itrs steps by the optimizer under test; the per-step losses go
to the original's pickle files in --save_dir, with summary.json (statistics
per seed and over seeds), a loss-curve PNG when matplotlib is installed, and
a table on standard output. With --compare_with, other optimizers run on the
same problems, seeds and batches in the same command, and comparison.md
reports them side by side.

The program defines the flags, checks them and turns them into the configs
of evaluation/config.py; the evaluation itself is evaluation/campaign.py.

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
original; see docs/evaluation.md).

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

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if __name__ == "__main__":
  # Ctrl-C during the imports (TensorFlow takes seconds): one line.
  from run_control import interrupts as _interrupts  # pylint: disable=g-import-not-at-top
  _interrupts.exit_while_starting("metatest.py")

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags
import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

import graph_mode  # pylint: disable=g-import-not-at-top,wrong-import-position
import optimizer_flags  # pylint: disable=g-import-not-at-top,wrong-import-position
from evaluation import baselines  # pylint: disable=g-import-not-at-top,wrong-import-position
from evaluation import campaign  # pylint: disable=g-import-not-at-top,wrong-import-position
from evaluation import config  # pylint: disable=g-import-not-at-top,wrong-import-position
from evaluation import tuning  # pylint: disable=g-import-not-at-top,wrong-import-position
from optimizer import checkpoints  # pylint: disable=g-import-not-at-top,wrong-import-position
from optimizer import settings  # pylint: disable=g-import-not-at-top,wrong-import-position
from problems import data_files  # pylint: disable=g-import-not-at-top,wrong-import-position
from problems import problem_sets  # pylint: disable=g-import-not-at-top,wrong-import-position
from run_control import atomic  # pylint: disable=g-import-not-at-top,wrong-import-position
from run_control import configs  # pylint: disable=g-import-not-at-top,wrong-import-position
from run_control import interrupts  # pylint: disable=g-import-not-at-top,wrong-import-position
from run_control import lock  # pylint: disable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS

PROGRAM = "metatest.py"
# Seeds lie in [0, SEED_LIMIT), the range of NumPy's RandomState.
SEED_LIMIT = 2**32
# Problem sets the original program defined flags for but never built.
MISSING_SETS = ("mnist_conv_wider", "mnist_conv_4layers",
                "cifar10_conv_4layers", "vgg16")
# Flags of the original program that evaluation never reads, by definer.
_UNUSED = (
    (flags.DEFINE_integer, (("task", 0), ("worker_tasks", 1),
                            ("num_problems", 1), ("num_meta_iterations", 5),
                            ("num_unroll_scale", 10), ("min_num_unrolls", 4),
                            ("num_partial_unroll_itr_scale", 50),
                            ("min_num_itr_partial_unroll", 10),
                            ("ps_tasks", 0))),
    (flags.DEFINE_float, (("meta_learning_rate", 1e-6),
                          ("gradient_clip_level", 1e4), ("nan_l2_reg", 1e-2),
                          ("l2_reg", 0.), ("rms_decay", 0.9),
                          ("rms_epsilon", 1e-20), ("l2_reg_scale", 1e-3))),
    (flags.DEFINE_boolean, (("set_profiling", False),
                            ("reset_rnn_params", True))),
)

# A flag value that cannot work (the message names the flag), and an
# evaluation stopped by SIGINT or SIGTERM: the library's errors.
FlagError = config.SettingError
RunInterrupted = campaign.RunInterrupted


def define_flags(flag_values=None):
  """Defines every flag of this program in `flag_values` (default: FLAGS).

  Only the program itself defines them in absl's global registry (when run
  as a script), so that metarun.py and this module can be imported
  together. The evaluation settings come from the configs of
  evaluation/config.py (each field names its flag), the optimizer's from
  optimizer_flags, --include_<stem>_problems from the problem-set registry
  and the baselines' learning-rate flags from evaluation.baselines.
  """
  fv = FLAGS if flag_values is None else flag_values
  for config_class in config.FLAG_CONFIGS:
    configs.define_flags(config_class, fv)
    # Listed by --help with the flags defined here.
    for name, _, _, _ in configs.flag_rows(config_class):
      flags.declare_key_flag(name, flag_values=fv)
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
  unused = "Unused by evaluation (kept so that the original's commands run)."
  for define, rows in _UNUSED:
    for name, default in rows:
      define(name, default, unused, flag_values=fv)
  for name, baseline in baselines.BASELINES.items():
    flags.DEFINE_list(baseline.flag, ["%g" % baseline.learning_rate],
                      "Learning rate of the %s baseline; a list is a grid, "
                      "every point run on the same seeds and the reported "
                      "one chosen on validation (held-out sets) or on the "
                      "last 100 training losses." % name, flag_values=fv)


def parse_flags(argv):
  """(values dict, names given explicitly) of a command line, for tests."""
  flag_values = flags.FlagValues()
  define_flags(flag_values)
  flag_values(list(argv))
  return ({name: flag_values[name].value for name in flag_values},
          {name for name in flag_values if flag_values[name].present})


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


def _check_grid(parse, *args):
  try:
    parse(*args)
  except ValueError as e:
    raise FlagError(str(e)) from None


def validate_flags(values):
  """Checks flag values before anything is built.

  Raises:
    FlagError: with a one-line message naming the flag.
  """
  for name in optimizer_names(values):
    if name not in config.OPTIMIZER_NAMES:
      flag = ("test_optimizer" if name == values["test_optimizer"]
              else "compare_with")
      raise FlagError("--%s: unknown optimizer %s; expected one of %s" %
                      (flag, name, ", ".join(config.OPTIMIZER_NAMES)))
  if values["num_testing_itrs"] <= 0:
    raise FlagError("--num_testing_itrs=%d: must be positive" %
                    values["num_testing_itrs"])
  if config.LEARNED in optimizer_names(values):
    try:
      settings.check(values)
    except settings.SettingError as e:
      raise FlagError("--%s=%s: %s" % (e.name, e.value, e.reason)) from None
  seeds(values)
  for baseline in baselines.BASELINES.values():
    _check_grid(tuning.parse_learning_rates, values[baseline.flag],
                baseline.flag)
  _check_grid(tuning.parse_initial_learning_rates, values["init_lr_grid"],
              "init_lr_grid", (values["min_lr"], values["max_lr"]))
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
    if values[problem_sets.flag_name(stem)]:
      raise FlagError("--include_%s_problems: the original defines this flag "
                      "but has no such problem set" % stem)
  if not selected_problem_sets(values):
    raise FlagError("no problem selected: set an --include_*_problems flag, "
                    "e.g. --include_mnist_mlp_relu_problems")
  if values["record_every"] < 0 or values["log_every"] <= 0:
    raise FlagError("--record_every must be >= 0 and --log_every positive")


def selected_problem_sets(values):
  """The stems of the enabled include flags, in registry order."""
  return [s for s in problem_sets.EVALUATION_CHOICES
          if values[problem_sets.flag_name(s)]]


def campaign_settings(values, explicit=(), command=()):
  """The `config.Campaign` of valid flag values (see `validate_flags`).

  Args:
    values: dict flag name -> value.
    explicit: names of the flags set on the command line.
    command: the command line summary.json records.
  """
  optimizer_values = {name: values[name] for name in settings.NAMES}
  return config.Campaign(
      optimizers=configs.from_flags(
          config.Optimizers, values,
          learning_rates={name: tuple(values[b.flag])
                          for name, b in baselines.BASELINES.items()},
          settings=optimizer_values,
          explicit_settings=frozenset(n for n in explicit
                                      if n in optimizer_values)),
      runs=configs.from_flags(
          config.Runs, values,
          problem_sets=tuple(selected_problem_sets(values))),
      measurements=configs.from_flags(config.Measurements, values),
      output=configs.from_flags(config.Output, values,
                                command=tuple(command)))


def run(values, explicit=(), out=sys.stdout, command=None):
  """Evaluates as the flag values say; returns the summary.json path.

  See `campaign.run`: every flag, the checkpoint and the data are checked
  before anything is written; the runs hold the lock of --save_dir.

  Args:
    values: dict flag name -> value.
    explicit: names of the flags set on the command line.
    out: progress and result stream.
    command: the command line summary.json records (default: sys.argv).

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
  evaluation = campaign_settings(values, explicit,
                                 sys.argv if command is None else command)
  graph_mode.enable()
  tf.logging.set_verbosity(tf.logging.ERROR)
  return campaign.run(evaluation, out, holder=PROGRAM)


def main(argv):
  if len(argv) > 1:
    sys.exit("%s: unexpected arguments %s" % (PROGRAM, " ".join(argv[1:])))
  values = {name: FLAGS[name].value for name in FLAGS}
  explicit = {name for name in FLAGS if FLAGS[name].present}
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
