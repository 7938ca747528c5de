"""Evaluates a learned optimizer (or a baseline): the original's metatest.py.

For every selected problem and every seed, a fresh optimizee is trained for
--num_testing_itrs steps by the optimizer under test; the per-step losses go
to the original's pickle files in --save_dir, with summary.json (statistics
per seed and over seeds), a loss-curve PNG when matplotlib is installed, and
a table on standard output. With --compare_with, other optimizers run on the
same problems, seeds and batches in the same command.

Examples:
  # The original README's evaluation command (the published checkpoint):
  python metatest.py \
      --train_dir=../shared/data/published/l2o-scale-regularize-train/hess_cl_mt \
      --save_dir=hess_cl_mt_eval --include_mnist_mlp_relu_problems \
      --model_name=mnist-relu --restore_model_name=model.ckpt-0 \
      --num_testing_itrs=10000
  # The same, against Adam and SGD in one run:
  python metatest.py ... --compare_with=Adam,SGD
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags

import graph_mode  # pylint: disable=g-import-not-at-top,wrong-import-position
import optimizer_flags  # pylint: disable=g-import-not-at-top,wrong-import-position
from evaluation import baselines  # pylint: disable=g-import-not-at-top,wrong-import-position
from optimizer import settings  # pylint: disable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS

LEARNED = "L2o"
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
  for stem, set_fn in problem_sets.EVALUATION_SETS.items():
    flags.DEFINE_boolean(problem_sets.flag_name(stem), False,
                         "Evaluate on problem_sets.%s." % set_fn.__name__,
                         flag_values=fv)
  for stem, set_fn in problem_sets.TRAINING_SETS.items():
    if stem not in problem_sets.EVALUATION_SETS:
      flags.DEFINE_boolean(problem_sets.flag_name(stem), False,
                           "Evaluate on problem_sets.%s." % set_fn.__name__,
                           flag_values=fv)
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
    flags.DEFINE_float(baseline.flag, baseline.learning_rate,
                       "Learning rate of the %s baseline." % name,
                       flag_values=fv)
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
    FlagError: not a non-empty list of integers.
  """
  try:
    result = [int(s) for s in values["seeds"]]
  except ValueError:
    raise FlagError("--seeds=%s: expected comma-separated integers, e.g. "
                    "6,12,18,24,30" % ",".join(values["seeds"])) from None
  if not result:
    raise FlagError("--seeds: give at least one seed")
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
  seeds(values)
  for name, baseline in baselines.BASELINES.items():
    if not values[baseline.flag] > 0:
      raise FlagError("--%s=%g: the %s learning rate must be positive" %
                      (baseline.flag, values[baseline.flag], name))
  for stem in MISSING_SETS:
    if values["include_%s_problems" % stem]:
      raise FlagError("--include_%s_problems: the original defines this flag "
                      "but has no such problem set" % stem)
  if not selected_problem_sets(values):
    raise FlagError("no problem selected: set an --include_*_problems flag, "
                    "e.g. --include_mnist_mlp_relu_problems")
  if values["record_every"] < 0 or values["log_every"] <= 0:
    raise FlagError("--record_every must be >= 0 and --log_every positive")


def selected_problem_sets(values):
  """(evaluation stems, training stems) of the enabled include flags."""
  from problems import problem_sets  # pylint: disable=g-import-not-at-top
  stems = [s for s in problem_sets.EVALUATION_SETS
           if values[problem_sets.flag_name(s)]]
  stems += [s for s in problem_sets.TRAINING_SETS
            if s not in problem_sets.EVALUATION_SETS and
            values[problem_sets.flag_name(s)]]
  return stems


def log_directory(values):
  """<train_dir>/<optimizer>_<cell_cls>_<cell_size>_<num_cells>."""
  return os.path.join(values["train_dir"],
                      settings.log_directory_name(values))


def learned_optimizer_settings(values, explicit, out=sys.stdout):
  """The optimizer settings for the learned optimizer.

  The log directory's optimizer.json (written by metarun.py) gives the
  settings the checkpoints were trained with; flags set on the command line
  override it. Without the file (the published checkpoint, or the
  original's runs) the flags alone decide, as in the original.

  Args:
    values: the flag values.
    explicit: names of the flags given on the command line.
    out: where the note about recorded settings goes.
  """
  logdir = log_directory(values)
  try:
    recorded = settings.load(logdir)
  except ValueError as e:
    raise FlagError("--train_dir: %s" % e) from None
  result = {name: values[name] for name in settings.NAMES}
  if recorded is None:
    return result
  changed = []
  for name in settings.NAMES:
    if name not in explicit and recorded[name] != result[name]:
      changed.append("%s=%s" % (name, recorded[name]))
      result[name] = recorded[name]
  if changed:
    out.write("using the optimizer settings recorded in %s: %s\n" %
              (os.path.join(logdir, settings.CONFIG_FILE), ", ".join(changed)))
  return result


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
  """(label, spec, dataset, batch_size) of every selected problem."""
  from problems import problem_sets  # pylint: disable=g-import-not-at-top
  entries = []
  for stem in selected_problem_sets(values):
    registry = (problem_sets.EVALUATION_SETS
                if stem in problem_sets.EVALUATION_SETS
                else problem_sets.TRAINING_SETS)
    problems = problem_sets.call_set(registry[stem], values["data_dir"])
    for i, (spec, dataset, batch_size) in enumerate(problems):
      label = stem if len(problems) == 1 else "%s_%d" % (stem, i)
      entries.append((label, spec, dataset, batch_size))
  return entries


def record_file(save_dir, optimizer_name, values, seed, label, several):
  """The original's pickle name, in a sub-folder for compared optimizers.

  The test optimizer's files keep the original's names in --save_dir; the
  others go to <save_dir>/<optimizer>/; with several problems the problem's
  label is appended so that files do not overwrite each other.
  """
  folder = save_dir
  if optimizer_name != values["test_optimizer"]:
    folder = os.path.join(save_dir, optimizer_name)
  name = "seed%d_eval_loss_record.pickle-%s" % (seed, values["model_name"])
  if several:
    name += "-" + label
  return os.path.join(folder, name)


def _optimizer_factory(name, values, optimizer_values, seed):
  if name == LEARNED:
    # The seed also fixes the learned optimizer's random initial learning
    # rates, so a seed's run is reproducible.
    return settings.optimizer_spec(optimizer_values, random_seed=seed).build
  return baselines.make_baseline(name,
                                 values[baselines.BASELINES[name].flag])


def _make_output_folders(values, names):
  save_dir = values["save_dir"]
  try:
    os.makedirs(save_dir, exist_ok=True)
    for name in names:
      if name != values["test_optimizer"]:
        os.makedirs(os.path.join(save_dir, name), exist_ok=True)
  except OSError as e:
    raise FlagError("--save_dir: cannot create %s (%s)" %
                    (save_dir, e.strerror or e)) from None


def _evaluate(values, name, optimizer_values, checkpoint, problem, seed,
              path, out):
  """One test run; writes its pickles and returns (statistics, losses)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from evaluation import runner  # pylint: disable=g-import-not-at-top
  from evaluation import summary  # pylint: disable=g-import-not-at-top
  spec, dataset, batch_size = problem
  test_run = runner.test_optimizer(
      _optimizer_factory(name, values, optimizer_values, seed), spec,
      values["num_testing_itrs"], dataset=dataset, batch_size=batch_size,
      seed=seed, logdir=checkpoint if name == LEARNED else None,
      record_every=values["record_every"] or None,
      batch_rng=(np.random.RandomState(seed) if values["seed_batch_order"]
                 else None),
      log=lambda line: (out.write(line + "\n"), out.flush()),
      log_every=values["log_every"])
  summary.write_loss_record(path, test_run.objective_values)
  if test_run.records:
    summary.write_pickle(path.replace("_eval_loss_record.", "_records."),
                         test_run.records)
  stats = summary.seed_statistics(
      seed, test_run.objective_values, test_run.final_objective,
      test_run.seconds_per_step, os.path.relpath(path, values["save_dir"]))
  out.write("  final loss %s (last-100 mean %s), whole-data loss %s, "
            "%.2f ms/step -> %s\n" % (
                stats["final_loss"], stats["final_loss_last100"],
                stats["final_full_loss"],
                1e3 * (stats["seconds_per_step"] or 0.), path))
  return stats, test_run.objective_values


def run(values, explicit=(), out=sys.stdout):
  """Evaluates as the flag values say; returns the summary.json path.

  Args:
    values: dict flag name -> value.
    explicit: names of the flags set on the command line.
    out: progress and result stream.
  """
  validate_flags(values)
  names = optimizer_names(values)
  optimizer_values = learned_optimizer_settings(values, explicit, out)
  checkpoint = None
  if LEARNED in names:
    checkpoint = check_learned_optimizer(values, optimizer_values)
  entries = problem_entries(values)
  _make_output_folders(values, names)
  graph_mode.enable()
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  tf.logging.set_verbosity(tf.logging.ERROR)
  from evaluation import plot  # pylint: disable=g-import-not-at-top
  from evaluation import runner  # pylint: disable=g-import-not-at-top
  from evaluation import summary  # pylint: disable=g-import-not-at-top
  from problems import problem_spec  # pylint: disable=g-import-not-at-top

  seed_list = seeds(values)
  header = {
      "command": list(sys.argv),
      "model_name": values["model_name"],
      "num_testing_itrs": values["num_testing_itrs"],
      "seeds": seed_list,
      "seed_batch_order": values["seed_batch_order"],
      "loss_at_steps": summary.loss_steps(values["num_testing_itrs"]),
  }
  results, curves = [], {}
  total = len(entries) * len(names) * len(seed_list)
  for index, (label, spec, dataset, batch_size) in enumerate(entries):
    # Every run rebuilds the problem in its own graph from the same NumPy
    # seed, so all optimizers and seeds see the same problem.
    problem = (problem_spec.Spec(runner.build_with_numpy_seed,
                                 (spec, 1000 + index), {}),
               dataset, batch_size)
    for name in names:
      result = {"optimizer": name, "problem": label,
                "checkpoint": checkpoint if name == LEARNED else None,
                "learning_rate": (None if name == LEARNED else
                                  values[baselines.BASELINES[name].flag]),
                "per_seed": []}
      results.append(result)
      for seed in seed_list:
        out.write("[%d/%d] testing %s with %s using seed %d\n" %
                  (len(results[:-1]) * len(seed_list) +
                   len(result["per_seed"]) + 1, total, label, name, seed))
        out.flush()
        path = record_file(values["save_dir"], name, values, seed, label,
                           len(entries) > 1)
        stats, losses = _evaluate(values, name, optimizer_values, checkpoint,
                                  problem, seed, path, out)
        result["per_seed"].append(stats)
        curves.setdefault(label, {}).setdefault(name, []).append(losses)
        # Rewritten after every seed: an interrupted run keeps its results.
        summary_path = summary.write_summary(values["save_dir"], header,
                                             results)
  out.write("\n%s\n\n" % summary.table(
      summary.read_summary(values["save_dir"])["results"]))
  out.write("summary: %s\n" % summary_path)
  if values["plot"]:
    figure = plot.plot_loss_curves(
        os.path.join(values["save_dir"],
                     "loss_curves-%s.png" % values["model_name"]),
        curves, title="model %s, %d seeds" % (values["model_name"],
                                              len(seed_list)))
    out.write("plot: %s\n" % figure if figure else
              "plot: skipped (matplotlib is not installed)\n")
  return summary_path


def main(argv):
  if len(argv) > 1:
    sys.exit("metatest.py: unexpected arguments %s" % " ".join(argv[1:]))
  values = {name: FLAGS[name].value for name in FLAGS}
  explicit = {name for name in FLAGS if FLAGS[name].present}
  from optimizer import checkpoints  # pylint: disable=g-import-not-at-top
  from problems import data_files  # pylint: disable=g-import-not-at-top
  try:
    run(values, explicit)
  except FlagError as e:
    sys.exit("metatest.py: %s" % e)
  except (data_files.DataNotFoundError, checkpoints.CheckpointError) as e:
    sys.exit("metatest.py: %s" % e)


if __name__ == "__main__":
  define_flags()
  app.run(main)
