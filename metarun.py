"""Meta-trains a learned optimizer: the original's training program.

Every flag of the original training program is defined here with its name,
type and default (also those of the original's library modules). The
meta-training settings come from the configs of meta_training/config.py
(each field names its flag), the optimizer's from optimizer_flags; the
problem-set flags --include_<name>_problems come from the problem-set
registry, --optimizer from the optimizer registry, --cell_cls by name.

Examples:
  python metarun.py --train_dir=runs/quickstart --fix_unroll=True \
      --num_meta_iterations=3 --evaluation_epochs=2
  python metarun.py --train_dir=/tmp/x --include_mnist_mlp_problems \
      --num_meta_iterations=2 --fix_unroll=True --fix_unroll_length=20 \
      --evaluation_epochs=1

A cluster (one parameter server, two workers; docs/distributed.md): start
each process with the same --ps_hosts/--worker_hosts lists and its own
--job_name/--task, e.g.
  python metarun.py --job_name=ps --task=0 --ps_hosts=localhost:2222 \
      --worker_hosts=localhost:2223,localhost:2224 --ps_tasks=1 \
      --worker_tasks=2
and --job_name=worker --task=0 (the chief), --task=1 with the training flags.
"""

import logging
import math
import os
import sys
import tempfile
import threading

# Quieten TensorFlow's C++ logging (grappler cost-model notes) unless the
# user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if __name__ == "__main__":
  # Ctrl-C during the imports (TensorFlow takes seconds): one line.
  from run_control import interrupts as _interrupts  # pylint: disable=g-import-not-at-top
  _interrupts.exit_while_starting("metarun.py")

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags

import graph_mode  # pylint: disable=g-import-not-at-top,wrong-import-position
from meta_training import config as meta_config  # pylint: disable=g-import-not-at-top,wrong-import-position
import optimizer_flags  # pylint: disable=g-import-not-at-top,wrong-import-position
from optimizer import settings  # pylint: disable=g-import-not-at-top,wrong-import-position
from run_control import atomic  # pylint: disable=g-import-not-at-top,wrong-import-position
from run_control import configs  # pylint: disable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS

# --- metarun.py: run control -------------------------------------------------
flags.DEFINE_string("train_dir", "opt/", "Parent of the log directory "
                    "<train_dir>/<optimizer>_<cell_cls>_<cell_size>_<num_cells>.")
flags.DEFINE_integer("task", 0, "Task id within --job_name; worker task 0 is "
                     "the chief.")
flags.DEFINE_integer("worker_tasks", 1, "Number of worker tasks (with a "
                     "cluster: the number of --worker_hosts).")

# --- meta-training settings (meta_training/config.py) ---------------------
# --objective_training_max_multiplier is one of the optimizer's flags.
for _config in meta_config.FLAG_CONFIGS:
  configs.define_flags(_config, skip=("objective_training_max_multiplier",))

# --- metarun.py and the optimizer modules: the optimizer's settings ----------------
# (optimizer, cell_size, num_cells, cell_cls, the HierarchicalRNN and
# CoordinatewiseRNN constructor flags; one table shared with metatest.py)
optimizer_flags.define()

# --- the original's other flags ---------------------------------------------
flags.DEFINE_integer("ps_tasks", 0, "Number of parameter-server tasks (with "
                     "a cluster: the number of --ps_hosts; else 0).")
flags.DEFINE_float("nan_l2_reg", 1e-2, "Unused by the original; kept.")
flags.DEFINE_boolean("set_profiling", False, "Profiling (unsupported).")
flags.DEFINE_float("l2_reg_scale", 1e-3, "Unused by the original; kept.")

# --- additions of this port --------------------------------------------------------
flags.DEFINE_string("data_dir", None, "Data folder (default: $L2O_DATA_DIR, "
                    "else ~/.cache/l2o-scale/data).")
flags.DEFINE_integer("seed", None, "Seed of the run's NumPy/Python/TF draws "
                     "(default: unseeded, as the original).")
flags.DEFINE_string("ps_hosts", "", "Cluster: comma-separated host:port of "
                    "the parameter servers.")
flags.DEFINE_string("worker_hosts", "", "Cluster: comma-separated host:port "
                    "of the workers (the first is the chief).")
flags.DEFINE_string("job_name", None, "Cluster: this process's job, ps or "
                    "worker (with --task).")
flags.DEFINE_integer("cluster_wait_secs", 600, "Cluster: seconds a worker "
                     "waits for the parameter servers, and for the chief to "
                     "initialise the meta-parameters, before giving up.")


def _define_problem_flags():
  from problems import problem_sets  # pylint: disable=g-import-not-at-top
  for stem, entry in problem_sets.TRAINING_SETS.items():
    flags.DEFINE_boolean(problem_sets.flag_name(stem), False,
                         "Train on problem_sets.%s." % entry.name)


_define_problem_flags()

# Flags of features this port does not support: any non-default value is
# rejected.
_NOT_YET_SUPPORTED = {
    "set_profiling": "profiling is not supported",
}

# The default problem set when no --include_*_problems flag is given: small
# synthetic problems that need no download.
DEFAULT_PROBLEM_SETS = ("quadratic", "bowl", "softmax_2_class",
                        "optimization_test")


class FlagError(ValueError):
  """A flag value that cannot work."""


def validate_flags(values):
  """Checks flag values before anything is built.

  Args:
    values: dict flag name -> value.

  Raises:
    FlagError: with a one-line message naming the flag.
  """
  if not values["train_dir"]:
    raise FlagError("--train_dir is empty: give the folder for the "
                    "checkpoints, e.g. --train_dir=runs/first")
  if values["seed"] is not None and not 0 <= values["seed"] < 2**31:
    raise FlagError("--seed=%d: expected an integer in [0, 2^31) (or no "
                    "--seed for an unseeded run)" % values["seed"])
  for name, reason in _NOT_YET_SUPPORTED.items():
    if values[name] != FLAGS[name].default:
      raise FlagError("--%s=%s: %s; leave it at its default %s" %
                      (name, values[name], reason, FLAGS[name].default))
  # The optimizer's settings (optimizer.json is checked by the same rules).
  try:
    settings.check(values)
  except settings.SettingError as e:
    raise FlagError("--%s=%s: %s" % (e.name, e.value, e.reason)) from None
  for name in ("num_problems", "num_meta_iterations", "fix_unroll_length",
               "fix_num_steps", "fix_num_steps_eval", "evaluation_period",
               "evaluation_epochs", "save_period", "mini_batch_size",
               "worker_tasks", "num_unroll_scale", "min_num_unrolls",
               "num_partial_unroll_itr_scale", "min_num_itr_partial_unroll",
               "es_pairs", "task_batch_size", "min_horizon", "max_horizon"):
    if values[name] <= 0:
      raise FlagError("--%s=%s: must be positive" % (name, values[name]))
  _check_float_flags(values)
  _check_meta_optimizer_flags(values)
  from meta_training import estimators  # pylint: disable=g-import-not-at-top
  if values["gradient_estimator"] not in estimators.names():
    raise FlagError("--gradient_estimator=%s: unknown estimator; expected one "
                    "of %s" % (values["gradient_estimator"],
                               ", ".join(estimators.names())))
  if values["if_mt"] and not estimators.imitates(values["gradient_estimator"]):
    raise FlagError("--gradient_estimator=%s has no imitation objective: "
                    "--if_mt needs %s" % (
                        values["gradient_estimator"], " or ".join(
                            "--gradient_estimator=" + n
                            for n in estimators.names()
                            if estimators.imitates(n))))
  if values["horizon_sampling"]:
    if values["min_horizon"] > values["max_horizon"]:
      raise FlagError("--min_horizon=%d exceeds --max_horizon=%d" %
                      (values["min_horizon"], values["max_horizon"]))
    for name in ("if_cl", "if_mt"):
      if values[name]:
        raise FlagError("--%s: horizon sampling (--horizon_sampling) has its "
                        "own trajectories; it runs without the curriculum "
                        "and without imitation" % name)
  if values["meta_objective_split"] not in ("train", "validation"):
    raise FlagError("--meta_objective_split=%s: expected train or "
                    "validation" % values["meta_objective_split"])
  if values["meta_objective_split"] == "validation":
    from problems import problem_sets  # pylint: disable=g-import-not-at-top
    without = [s for s in selected_problem_sets(values)
               if s not in problem_sets.VALIDATION_DATA]
    if without:
      raise FlagError(
          "--meta_objective_split=validation needs problem sets with a "
          "validation hold-out (%s); %s has none" % (
              ", ".join("--" + problem_sets.flag_name(s)
                        for s in problem_sets.VALIDATION_DATA),
              "--" + problem_sets.flag_name(without[0])
              if values[problem_sets.flag_name(without[0])]
              else "the default synthetic set"))
  stages = len(meta_config.Schedule.curriculum_steps) - 1
  if not 0 <= values["curriculum_stages"] <= stages:
    raise FlagError("--curriculum_stages=%d: expected 0 (all %d stages) to "
                    "%d" % (values["curriculum_stages"], stages, stages))
  if values["evaluation_period"] > values["num_meta_iterations"]:
    raise FlagError(
        "--evaluation_period=%d exceeds --num_meta_iterations=%d: no "
        "evaluation would run, so model.ckpt-0 (the best meta-parameters) "
        "would never be written" % (values["evaluation_period"],
                                    values["num_meta_iterations"]))
  for name in ("fix_num_steps", "fix_num_steps_eval"):
    if values["fix_unroll_length"] > values[name]:
      raise FlagError("--fix_unroll_length=%d exceeds --%s=%d: a run needs "
                      "at least one whole unroll" %
                      (values["fix_unroll_length"], name, values[name]))
  if values["if_cl"] and values["fix_unroll_length"] > 100:
    raise FlagError("--fix_unroll_length=%d: the curriculum's first stage has "
                    "100 steps; use at most 100 with --if_cl" %
                    values["fix_unroll_length"])
  if values["mt_k"] < 1:
    raise FlagError("--mt_k=%d: must be at least 1" % values["mt_k"])
  if not 0 <= values["mt_ratio"] <= 1:
    raise FlagError("--mt_ratio=%g: must lie in [0, 1]" % values["mt_ratio"])
  if values["task"] < 0:
    raise FlagError("--task=%d: must not be negative" % values["task"])
  cluster_config(values)
  from regularizers import registry as reg_registry  # pylint: disable=g-import-not-at-top
  if values["reg_option"] not in reg_registry.NAMES:
    raise FlagError("--reg_option=%s: unknown regulariser; expected one of %s"
                    % (values["reg_option"], ", ".join(reg_registry.NAMES)))
  if values["hessian_itrs"] <= 0:
    raise FlagError("--hessian_itrs=%d: must be positive" %
                    values["hessian_itrs"])


# Float flags beyond the optimizer's (settings.check covers those) whose
# value must be positive, or at least zero; each must be finite. A NaN
# --meta_learning_rate made every later checkpoint NaN.
_POSITIVE_FLOATS = ("meta_learning_rate", "rms_epsilon", "gradient_clip_level",
                    "meta_adam_epsilon", "es_sigma")
_NON_NEGATIVE_FLOATS = ("l2_reg", "alpha", "beta", "gradient_clip_norm",
                        "meta_loss_ceiling")


def _float_flags():
  """The names of metarun.py's float flags besides the optimizer's."""
  names = [row[0] for config in meta_config.FLAG_CONFIGS
           for row in configs.flag_rows(config) if row[1] is float]
  return names + ["nan_l2_reg", "l2_reg_scale"]


def _check_float_flags(values):
  """Every float flag finite, and in its range where it has one.

  Raises:
    FlagError: naming the first bad flag.
  """
  for name in _float_flags():
    value = values[name]
    if not math.isfinite(value):
      raise FlagError("--%s=%s: must be a finite number" % (name, value))
    if name in _POSITIVE_FLOATS and value <= 0:
      raise FlagError("--%s=%s: must be positive" % (name, value))
    if name in _NON_NEGATIVE_FLOATS and value < 0:
      raise FlagError("--%s=%s: must not be negative" % (name, value))
  for name in ("rms_decay", "meta_adam_beta1", "meta_adam_beta2"):
    if not 0 <= values[name] < 1:
      raise FlagError("--%s=%s: must lie in [0, 1)" % (name, values[name]))
  if 0 < values["meta_loss_ceiling"] <= 1:
    raise FlagError("--meta_loss_ceiling=%s: must exceed 1 (a multiple of "
                    "the trajectory's first objective), or be 0 for off" %
                    values["meta_loss_ceiling"])


def _check_meta_optimizer_flags(values):
  """The meta-optimizer's choices, schedule and trained groups.

  Raises:
    FlagError: naming the first bad flag.
  """
  if values["meta_optimizer"] not in ("rmsprop", "adam"):
    raise FlagError("--meta_optimizer=%s: expected rmsprop or adam" %
                    values["meta_optimizer"])
  for name in ("meta_learning_rate_warmup", "meta_learning_rate_decay_steps"):
    if values[name] < 0:
      raise FlagError("--%s=%d: must not be negative" % (name, values[name]))
  schedule = values["meta_learning_rate_schedule"]
  if schedule not in ("constant", "cosine"):
    raise FlagError("--meta_learning_rate_schedule=%s: expected constant or "
                    "cosine" % schedule)
  if schedule == "cosine" and values["meta_learning_rate_decay_steps"] <= 0:
    raise FlagError("--meta_learning_rate_schedule=cosine needs "
                    "--meta_learning_rate_decay_steps > 0")
  groups = values["meta_parameter_groups"]
  if groups:
    from optimizer import registry  # pylint: disable=g-import-not-at-top
    known = [name for name, _ in registry.optimizer_class(
        values["optimizer"]).META_PARAMETER_GROUPS]
    unknown = [g for g in groups if g not in known]
    if unknown:
      raise FlagError("--meta_parameter_groups=%s: %s has no group %s; its "
                      "groups: %s" % (",".join(groups), values["optimizer"],
                                      ", ".join(unknown),
                                      ", ".join(known) or "none"))


def cluster_config(values):
  """The `cluster.ClusterConfig` of the flags, or None for one process.

  Raises:
    FlagError: inconsistent cluster flags.
  """
  from meta_training import cluster  # pylint: disable=g-import-not-at-top
  try:
    return cluster.config_from_flags(values)
  except cluster.ClusterFlagError as e:
    raise FlagError(str(e)) from None


def regularizer_config(values, out=sys.stdout):
  """The `config.Regularizer` the flags describe.

  --reg_optimizer adds alpha * sum_t R_t to the meta-objective of the unrolls
  that --regularize_time switches on ("none": never, as the original, so the
  original README's commands train without it); --reg_optimizee adds
  beta * R_t to the optimizee's objective at every step.

  A meta-objective term that --regularize_time=none never switches on is
  not built (the original built it; its branch never ran): the graph, its
  construction time and memory are those of a run without it, and the
  values are the same.
  """
  from regularizers import registry as reg_registry  # pylint: disable=g-import-not-at-top
  reg_optimizer = values["reg_optimizer"]
  if reg_optimizer and values["regularize_time"] == "none":
    out.write("warning: --reg_optimizer=True with --regularize_time=none "
              "adds nothing to the meta-objective (as in the original), so "
              "it is not built; use posterior, prior or always to apply "
              "it\n")
    reg_optimizer = False
  fn = None
  if reg_optimizer or values["reg_optimizee"]:
    fn = reg_registry.make_regularizer(
        values["reg_option"], values["hessian_itrs"], values["seed"],
        values["fixed_hessian_probes"])
  return configs.from_flags(meta_config.Regularizer, values,
                            on_meta_objective=reg_optimizer, fn=fn)


def regularizer_settings(values, out=sys.stdout):
  """The regulariser arguments of `build_meta_graph` the flags describe."""
  return regularizer_config(values, out).graph_arguments()


def log_directory(values):
  """<train_dir>/<optimizer>_<cell_cls>_<cell_size>_<num_cells>."""
  return os.path.join(values["train_dir"],
                      settings.log_directory_name(values))


def check_writable(logdir):
  """Creates `logdir` if needed and checks that files can be written there.

  Raises:
    FlagError: naming --train_dir.
  """
  try:
    os.makedirs(logdir, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=logdir, prefix=".write-test-"):
      pass
  except OSError as e:
    raise FlagError("--train_dir: cannot write to %s (%s)" %
                    (logdir, e.strerror or e)) from None


def check_resumable(logdir, values):
  """Checks the checkpoint a run in `logdir` would resume from.

  Call holding `logdir`'s lock (`metaopt.open_log_directory`), before
  anything is written: finds the newest checkpoint that reads back whole
  (silently: meta-training reports what it skips) and checks that the
  flags' optimizer fits it.

  Returns:
    The checkpoint prefix, or None for a fresh start.

  Raises:
    checkpoints.CheckpointError: checkpoint files that do not read back or
      were written by an optimizer of another shape.
  """
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  from optimizer import checkpoint_files  # pylint: disable=g-import-not-at-top
  from optimizer import checkpoints  # pylint: disable=g-import-not-at-top
  path = checkpoint_files.latest_complete(logdir)
  if path is None:
    return None
  with tf.Graph().as_default():
    optimizer_spec(values).build()
    checkpoints.check_compatible(path, checkpoints.meta_variables())
  return path


class RunFailed(RuntimeError):
  """Meta-training ran but produced nothing to evaluate."""


def optimizer_spec(values):
  """The Spec of the optimizer the flags describe."""
  return settings.optimizer_spec(values)


def selected_problem_sets(values):
  """The stems of the enabled --include_*_problems flags (or the default)."""
  from problems import problem_sets  # pylint: disable=g-import-not-at-top
  stems = [stem for stem in problem_sets.TRAINING_SETS
           if values[problem_sets.flag_name(stem)]]
  return stems or list(DEFAULT_PROBLEM_SETS)


def run(values, out=sys.stdout):
  """Meta-trains as the flag values say; returns the log directory.

  In a cluster (--job_name) a parameter server serves until the chief
  worker has finished and returns None; a worker meta-trains.
  """
  validate_flags(values)
  config = cluster_config(values)
  logdir = log_directory(values)
  graph_mode.enable()
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  tf.logging.set_verbosity(tf.logging.ERROR)
  from meta_training import cluster  # pylint: disable=g-import-not-at-top
  if config is not None and config.job_name == cluster.PS_JOB:
    cluster.run_parameter_server(config, out)
    return None
  # Only the chief of a cluster writes files.
  if config is not None and not config.is_chief:
    return _meta_train(values, config, logdir, out)
  import metaopt  # pylint: disable=g-import-not-at-top
  check_writable(logdir)
  held = metaopt.open_log_directory(
      logdir, lambda m: out.write(m + "\n"), program="metarun.py")
  try:
    record_settings = check_recorded_settings(logdir, values)
    check_resumable(logdir, values)
    return _meta_train(values, config, logdir, out, record_settings)
  finally:
    held.release()


def check_recorded_settings(logdir, values):
  """Checks the flags against the optimizer.json of `logdir`'s checkpoints.

  Call holding `logdir`'s lock, before anything is written. The file says
  which optimizer the checkpoints were trained with: with checkpoints
  there, flags that build another optimizer are refused (a resume would
  train, and the file describe, the wrong one). Without checkpoints the
  file describes nothing (a run stopped before its first save) and is
  replaced when this run starts.

  Returns:
    Whether this run writes optimizer.json when it starts: no checkpoint
    is there, or no file (a run of the original code).

  Raises:
    FlagError: the file is damaged or hand-edited wrongly (naming the key),
      or it records settings other than the flags' (naming them).
  """
  from optimizer import checkpoint_files  # pylint: disable=g-import-not-at-top
  if not checkpoint_files.listed(logdir):
    return True
  try:
    recorded = settings.load(logdir)
  except ValueError as e:
    raise FlagError(str(e)) from None
  if recorded is None:
    return True
  differing = settings.differences(recorded, values)
  if differing:
    raise FlagError(
        "%s: the checkpoints in %s were trained with %s (%s); resume with "
        "those, or start afresh with another --train_dir" % (
            ", ".join("--%s=%s" % (n, values[n]) for n in differing), logdir,
            ", ".join("%s=%s" % (n, recorded[n]) for n in differing),
            settings.CONFIG_FILE))
  return False


def _meta_train(values, config, logdir, out, record_settings=False):
  """Runs meta-training (the log directory is held if this task writes).

  With `record_settings` the optimizer's settings are written to
  optimizer.json once the run really starts (its data are loaded), before
  its first checkpoint.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  from meta_training import cluster  # pylint: disable=g-import-not-at-top
  from optimizer import checkpoint_files  # pylint: disable=g-import-not-at-top
  worker = None if config is None else cluster.Worker(config, out)
  import metaopt  # pylint: disable=g-import-not-at-top
  from meta_training import roles  # pylint: disable=g-import-not-at-top
  from problems import problem_sets  # pylint: disable=g-import-not-at-top
  stems = selected_problem_sets(values)
  if not any(values[problem_sets.flag_name(s)] for s in stems):
    out.write("no --include_*_problems flag: training on the default "
              "synthetic set (%s)\n" % ", ".join(stems))
  try:
    problems = problem_sets.training_problems(
        stems, data_dir=values["data_dir"],
        validation=values["meta_objective_split"] == "validation")
  except ValueError as e:
    raise FlagError(str(e)) from None
  if record_settings:
    settings.save(logdir, values)
  is_chief = values["task"] == 0
  seed = values["seed"]
  if worker is not None:
    seed = cluster.task_seed(seed, config.task)
  best = metaopt.train_optimizer(
      logdir, optimizer_spec(values), problems,
      schedule=configs.from_flags(
          meta_config.Schedule, values,
          random_problems=values["worker_tasks"] == 1 or not is_chief),
      meta_optimizer=configs.from_flags(meta_config.MetaOptimizer, values),
      evaluation=configs.from_flags(meta_config.Evaluation, values),
      data=configs.from_flags(meta_config.Data, values),
      regularizer=regularizer_config(values, out),
      imitation=configs.from_flags(meta_config.Imitation, values),
      seed=seed, role=roles.for_worker(worker, saves_last=is_chief), out=out)
  if worker is not None:
    if not worker.is_chief:
      return logdir
    worker.release_parameter_servers()
  best_file = checkpoint_files.name(0)
  if not np.isfinite(best) or not checkpoint_files.is_complete(
      os.path.join(logdir, best_file)):
    raise RunFailed(
        "no evaluation of this run was finite (see the warnings above), so "
        "%s was not written; lower --meta_learning_rate or check the "
        "problem" % best_file)
  out.write("evaluate with: python metatest.py --train_dir=%s "
            "--restore_model_name=%s --include_<set>_problems\n" %
            (values["train_dir"], best_file))
  return logdir


def main(argv):
  if len(argv) > 1:
    sys.exit("metarun.py: unexpected arguments %s" % " ".join(argv[1:]))
  values = {name: FLAGS[name].value for name in FLAGS}
  from meta_training import cluster  # pylint: disable=g-import-not-at-top
  import metaopt  # pylint: disable=g-import-not-at-top
  from optimizer import checkpoints  # pylint: disable=g-import-not-at-top
  from problems import data_files  # pylint: disable=g-import-not-at-top
  from run_control import interrupts  # pylint: disable=g-import-not-at-top
  from run_control import lock  # pylint: disable=g-import-not-at-top
  _quiet_summary_writer_thread()
  try:
    with interrupts.handling():
      run(values)
  except metaopt.RunInterrupted as e:
    resume = ("resume from %s" % os.path.basename(e.checkpoint)
              if e.checkpoint else "start again (no checkpoint was written)")
    print("metarun.py: interrupted (%s) at meta-iteration %d of %d; rerun "
          "the same command to %s" % (e, e.meta_iteration, e.total, resume),
          file=sys.stderr)
    sys.exit(e.exit_status)
  except interrupts.Interrupted as e:
    print("metarun.py: interrupted (%s) before meta-training started; "
          "nothing was changed" % e, file=sys.stderr)
    sys.exit(e.exit_status)
  except (FlagError, FileNotFoundError, cluster.ClusterError,
          checkpoints.CheckpointError, lock.LockError, RunFailed,
          data_files.DataNotFoundError, data_files.DataFileError) as e:
    sys.exit("metarun.py: %s" % e)
  except Exception as e:  # pylint: disable=broad-except
    if not atomic.is_disk_full(e):
      raise
    # Every file is written whole or not at all (checkpoint_files, atomic).
    sys.exit("metarun.py: no space left on device in %s; the checkpoints "
             "there are whole: free some space and rerun the same command "
             "to resume" % log_directory(values))


def _quiet_summary_writer_thread():
  """Leaves out what TensorFlow's summary writer thread says of a full disk.

  The thread logs a write error and raises it, printed as a traceback; the
  writer raises it again in the main thread at the next add_summary, flush
  or close, where `main` reports a full disk in one line. The thread's log
  record and traceback of that error are not printed.
  """
  default_hook = threading.excepthook

  def hook(args):
    if (args.thread is not None and args.thread.name == "EventLoggerThread"
        and atomic.is_disk_full(args.exc_value)):
      return
    default_hook(args)

  def keep(record):
    return not (str(record.msg).startswith("EventFileWriter writer thread")
                and any(atomic.is_disk_full(a) for a in record.args or ()
                        if isinstance(a, BaseException)))

  threading.excepthook = hook
  logging.getLogger("tensorflow").addFilter(keep)


if __name__ == "__main__":
  app.run(main)
