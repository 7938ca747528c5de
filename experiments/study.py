r"""The papers' comparison in one command: which training makes L2O-Scale
better?

Meta-trains every variant (experiments/plan.py: the README's "Train
L2O-Scale" command, with the Hessian term on, with curriculum and imitation,
both, and with a validation meta-objective) with each meta-training seed
(--meta_seeds) on the MNIST MLP set, evaluates each variant's model.ckpt-0
and the start they trained from (the row `initial`: the recorded
model.ckpt-initial) over their initial-learning-rate grid and the tuned
baselines (Adam, RMSProp) on the same seeds and batches, and writes
<study_dir>/report.md with one table per evaluation set and what
meta-training added (each variant minus its `initial`).

  python experiments/study.py --study_dir=runs/study
  python experiments/study.py --study_dir=runs/quick --quick   # 2-3 minutes

`--plan=recipe` measures the meta-training recipe instead (docs/
meta_training.md): the recipe with and without the Hessian term, 3
meta-training seeds, also on the meta-training net itself (`mnist_mlp`),
10,000-step runs, 5-point grids, and a figure of the meta-training curves:

  python experiments/study.py --plan=recipe --study_dir=runs/recipe

A rerun of the same command skips every finished stage and redoes or resumes
only what is missing or half-written (see experiments/stages.py); Ctrl-C
stops the current stage cleanly. Arguments after `--` are passed to every
metarun.py command (e.g. a cluster's --ps_hosts=... --worker_hosts=...).
"""

import dataclasses
import json
import os
import sys
import time

# Quieten TensorFlow's C++ logging, as the programs do; run as a script, the
# repository root is not on the path.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags

from experiments import plan
from experiments import report
from experiments import stages as stages_lib
import graph_mode
from optimizer import checkpoint_files
from problems import data_files
from run_control import atomic
from run_control import interrupts
from run_control import lock
# pylint: enable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS
_DEFAULT = plan.Budget()


def define_flags():
  """Defines the program's flags in absl's registry (when run as a script,
  so that this module can be imported beside metarun.py, whose flags share
  some names)."""
  flags.DEFINE_string("study_dir", None, "Folder of the study's runs and "
                      "report (created if needed).")
  flags.DEFINE_enum("plan", "variants", list(plan.PLANS), "What to study: "
                    "'variants' (the papers' training commands and their "
                    "enhancements) or 'recipe' (the meta-training recipe "
                    "with and without the Hessian term, measured at 10,000 "
                    "steps over 3 meta-training seeds). Each plan has its "
                    "own variants, evaluation sets and budget defaults "
                    "(experiments/plan.py); the defaults shown below are "
                    "the 'variants' plan's, and flags given explicitly "
                    "override either plan's.")
  flags.DEFINE_boolean("quick", False, "Shrink every budget (a few "
                       "meta-iterations, a few hundred steps, 2 seeds, 1-point "
                       "grids): the whole pipeline in minutes. Budget flags "
                       "given explicitly still apply.")
  flags.DEFINE_list("variants", list(plan.VARIANT_NAMES),
                    "Variants to meta-train and evaluate (default: the "
                    "plan's; any of %s)." % ", ".join(plan.ALL_VARIANT_NAMES))
  flags.DEFINE_list("evaluation_sets", list(plan.EVALUATION_SET_NAMES),
                    "metatest.py sets to evaluate on (default: the plan's; "
                    "any of %s)." % ", ".join(plan.ALL_EVALUATION_SET_NAMES))
  flags.DEFINE_string("data_dir", None, "Data folder of both programs "
                      "(default: $L2O_DATA_DIR, else ~/.cache/l2o-scale/data). It needs "
                      "mnist/ with the training files (meta-training, and "
                      "the validation variant's hold-out) and the test files.")
  flags.DEFINE_string("reference_train_dir", None, "A metatest.py "
                      "--train_dir holding a trained HierarchicalRNN's "
                      "model.ckpt-0, evaluated beside the variants as the row "
                      "'%s' (e.g. the original authors' published checkpoint, "
                      "../shared/data/published/l2o-scale-regularize-train/"
                      "hess_cl_mt); default: no such row." % plan.REFERENCE)
  flags.DEFINE_boolean("report_only", False, "Only rewrite report.md from the "
                       "files already there.")
  # The budgets (plan.Budget); --quick changes their defaults.
  flags.DEFINE_integer("meta_iterations", _DEFAULT.meta_iterations,
                       "Meta-iterations of every variant (metarun.py "
                       "--num_meta_iterations; the papers: 100).")
  flags.DEFINE_string("meta_learning_rate", _DEFAULT.meta_learning_rate,
                      "metarun.py --meta_learning_rate of every variant (the "
                      "commands' own: 1e-6, which hardly moves the "
                      "meta-parameters in this budget; see docs/study.md).")
  flags.DEFINE_integer("curriculum_stages", _DEFAULT.curriculum_stages,
                       "Curriculum stages the CL variants train at most "
                       "(metarun.py --curriculum_stages; 0: all 11).")
  flags.DEFINE_list("meta_seeds", [str(s) for s in _DEFAULT.meta_seeds],
                    "metarun.py --seed of the variants: each seed meta-trains "
                    "every variant and has its own 'initial' row (the "
                    "variants' recorded start); the tables then give the "
                    "spread over meta-training seeds and over evaluation "
                    "seeds apart.")
  flags.DEFINE_list("seeds", [str(s) for s in _DEFAULT.seeds],
                    "Evaluation seeds, the same for every optimizer (the "
                    "papers: 5-10).")
  flags.DEFINE_integer("mlp_steps", _DEFAULT.mlp_steps, "Optimizer steps of "
                       "each evaluation run on the MLP sets (the papers: "
                       "10,000).")
  flags.DEFINE_integer("conv_steps", _DEFAULT.conv_steps, "Optimizer steps of "
                       "each evaluation run on the conv net set.")
  flags.DEFINE_list("learning_rates", list(_DEFAULT.learning_rates),
                    "The baselines' learning-rate grid.")
  flags.DEFINE_list("init_lr_grid", list(_DEFAULT.init_lr_grid),
                    "The learned optimizers' initial learning rates besides "
                    "the original range [1e-6, 1e-2] (metatest.py "
                    "--init_lr_grid).")
  flags.DEFINE_integer("hessian_max_samples", _DEFAULT.hessian_max_samples,
                       "Training samples of the Hessian estimates.")
  flags.DEFINE_integer("hessian_lanczos_steps", _DEFAULT.hessian_lanczos_steps,
                       "Lanczos steps of the top-eigenvalue estimate.")
  flags.DEFINE_integer("hessian_trace_probes", _DEFAULT.hessian_trace_probes,
                       "Probes of the Hessian trace estimate.")
  flags.DEFINE_list("selection_seeds", [], "Seeds of the checkpoint "
                    "selection (experiments/selection.py; the recipe plan: "
                    "101,102): each run's checkpoints are scored on the "
                    "meta-training net at --selection_init_lrs and the best "
                    "is evaluated. Empty (the variants plan): metarun.py's "
                    "model.ckpt-0 is evaluated.")
  flags.DEFINE_integer("selection_steps", _DEFAULT.selection_steps,
                       "Steps of each selection run.")
  flags.DEFINE_list("selection_init_lrs", list(_DEFAULT.selection_init_lrs),
                    "The selection's initial learning rates besides each "
                    "run's own range; a checkpoint scores its best point.")
  flags.DEFINE_integer("selection_every", _DEFAULT.selection_every,
                       "Score every k-th meta-iteration's checkpoint (and "
                       "the last).")


_BUDGET_FLAGS = ("meta_iterations", "meta_learning_rate", "curriculum_stages",
                 "meta_seeds", "seeds", "mlp_steps", "conv_steps",
                 "learning_rates", "init_lr_grid", "hessian_max_samples",
                 "hessian_lanczos_steps", "hessian_trace_probes",
                 "selection_seeds", "selection_steps", "selection_init_lrs",
                 "selection_every")
STUDY_FILE = "study.json"


class StudyError(ValueError):
  """A flag or study folder that cannot work (one line)."""


def study_plan(values):
  """The `plan.Plan` of --plan (the 'variants' plan when absent)."""
  return plan.PLANS[values.get("plan") or "variants"]


def budget_from_flags(values, explicit):
  """The `plan.Budget` of the flags: the plan's quick or full budget, with
  the flags given explicitly on top."""
  chosen = study_plan(values)
  base = chosen.quick if values["quick"] else chosen.budget
  changes = {}
  for name in _BUDGET_FLAGS:
    if name not in explicit:
      continue
    value = values[name]
    if name in ("seeds", "meta_seeds", "selection_seeds"):
      try:
        value = tuple(int(s) for s in value)
      except ValueError:
        raise StudyError("--%s=%s: expected integers" %
                         (name, ",".join(value))) from None
    elif isinstance(value, list):
      value = tuple(value)
    changes[name] = value
  budget = dataclasses.replace(base, **changes)
  for name in ("meta_iterations", "mlp_steps", "conv_steps",
               "selection_steps", "selection_every"):
    if getattr(budget, name) <= 0:
      raise StudyError("--%s=%d: must be positive" %
                       (name, getattr(budget, name)))
  if not budget.seeds or not budget.learning_rates or not budget.meta_seeds:
    raise StudyError("--seeds, --meta_seeds and --learning_rates need at "
                     "least one value")
  if set(budget.selection_seeds) & set(budget.seeds):
    raise StudyError("--selection_seeds=%s: must differ from the evaluation "
                     "seeds --seeds=%s" % (
                         ",".join(str(s) for s in budget.selection_seeds),
                         ",".join(str(s) for s in budget.seeds)))
  for name in ("seeds", "meta_seeds", "selection_seeds"):
    values_of = getattr(budget, name)
    if len(set(values_of)) != len(values_of) or not all(
        0 <= s < 2**31 for s in values_of):
      raise StudyError("--%s=%s: expected distinct integers in [0, 2^31)" %
                       (name, ",".join(str(s) for s in values_of)))
  return budget


def names_from_flags(values, explicit):
  """`values` with --variants and --evaluation_sets the plan's unless given
  explicitly."""
  chosen = study_plan(values)
  values = dict(values)
  if "variants" not in explicit:
    values["variants"] = list(chosen.variants)
  if "evaluation_sets" not in explicit:
    values["evaluation_sets"] = list(chosen.evaluation_sets)
  return values


def check_names(values):
  for flag, known in (("variants", plan.ALL_VARIANT_NAMES),
                      ("evaluation_sets", plan.ALL_EVALUATION_SET_NAMES)):
    unknown = [v for v in values[flag] if v not in known]
    if unknown or not values[flag]:
      raise StudyError("--%s=%s: expected names among %s" % (
          flag, ",".join(values[flag]), ", ".join(known)))


def check_reference(reference_dir):
  """Refuses a --reference_train_dir without a model.ckpt-0 in a log folder."""
  if not reference_dir:
    return
  found = os.path.isdir(reference_dir) and any(
      checkpoint_files.is_complete(
          os.path.join(reference_dir, d, "model.ckpt-0"))
      for d in os.listdir(reference_dir))
  if not found:
    raise StudyError("--reference_train_dir=%s: expected a folder whose log "
                     "folder (e.g. HierarchicalRNN_GRUCell_20_2/) holds "
                     "model.ckpt-0" % reference_dir)


def check_study_file(study_dir, settings):
  """Refuses a study folder made with other budgets; records new ones."""
  path = os.path.join(study_dir, STUDY_FILE)
  settings = json.loads(json.dumps(settings))  # as it reads back
  if os.path.exists(path):
    with open(path) as f:
      before = json.load(f)
    if isinstance(before.get("budget"), dict):
      # Budget fields added since the folder was made had their defaults.
      before["budget"] = dict(json.loads(json.dumps(
          plan.Budget().as_dict())), **before["budget"])
    different = sorted(k for k in set(before) | set(settings)
                       if before.get(k) != settings.get(k))
    if different:
      raise StudyError(
          "%s was made with other settings (%s differ: %s); rerun with the "
          "same flags or use another --study_dir" % (
              path, ", ".join(different),
              "; ".join("%s was %s" % (k, before.get(k)) for k in different)))
    return
  atomic.write_json(path, settings)


def _machine():
  model = "unknown CPU"
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          model = line.split(":", 1)[1].strip()
          break
  except OSError:
    pass
  memory = ""
  try:
    with open("/proc/meminfo") as f:
      kib = int(f.readline().split()[1])
    memory = ", %.0f GiB" % (kib / 2.0**20)
  except (OSError, ValueError, IndexError):
    pass
  return "%d cores (%s)%s" % (os.cpu_count() or 0, model, memory)


def mnist_stand_in(data_dir):
  """Whether the MNIST training files are the test files (a stand-in)."""
  folder = os.path.join(data_files.resolve_data_dir(data_dir), "mnist")
  for stem in ("images-idx3-ubyte", "labels-idx1-ubyte"):
    found = []
    for prefix in ("train-", "t10k-"):
      names = [os.path.join(folder, prefix + stem + s) for s in (".gz", "")]
      found.append(next((n for n in names if os.path.exists(n)), None))
    if None in found:
      return None
    with open(found[0], "rb") as a, open(found[1], "rb") as b:
      if a.read() != b.read():
        return False
  return True


def header(values, budget, variants, command):
  """The report's opening: date, machine, command, budgets and caveats."""
  stand_in = mnist_stand_in(values["data_dir"])
  chosen = [v for v in plan.ALL_VARIANTS if v.name in variants]
  lines = [
      "# %s" % study_plan(values).title,
      "",
      "Written %s on %s by" % (time.strftime("%Y-%m-%d %H:%M"), _machine()),
      "",
      "```sh", " ".join(command), "```", "",
      "**Variants** (meta-trained with metarun.py --seed=%s on the MNIST MLP "
      "set, each from its base flags with its own on top):" %
      ",".join(str(s) for s in budget.meta_seeds), ""]
  for variant in chosen:
    extra = " ".join("--%s=%s" % kv for kv in variant.flags.items())
    lines.append("- `%s`: %s%s" % (variant.name, variant.description,
                                   " (`%s`)" % extra if extra else ""))
  for base in dict.fromkeys(id(v.base) for v in chosen):
    flags_of = next(v.base for v in chosen if id(v.base) == base)
    lines += ["", "Base flags of %s (the meta-learning rate and the "
              "meta-iterations are the budget's):" % ", ".join(
                  "`%s`" % v.name for v in chosen if id(v.base) == base),
              "", "```", " ".join("--%s=%s" % kv for kv in flags_of.items()
                                  if kv[0] != "num_meta_iterations"), "```"]
  lines += ["", "**Start**: `%s` is the HierarchicalRNN the variants of a "
            "meta-training seed started from (the first variant's recorded "
            "`model.ckpt-initial`; the meta-training table says whether every "
            "variant's start is bit-identical to it), evaluated as the "
            "variants are: what meta-training added is a variant's "
            "difference from it." % plan.INITIAL]
  if budget.selection_seeds:
    lines += ["", "**Checkpoint evaluated**: `%s`, chosen by "
              "experiments/selection.py among each run's checkpoints of every "
              "%d-th meta-iteration and the last: the lowest mean last-100 "
              "training loss on `%s`, each checkpoint at its best of its own "
              "initial-learning-rate range and %s, %d steps, "
              "seeds %s (which no evaluation uses); the run's own "
              "`model.ckpt-0` (its best evaluation at random initial learning "
              "rates) is not used." % (
                  plan.SELECTED_CHECKPOINT, budget.selection_every,
                  plan.META_TRAINING_SET.name,
                  ", ".join(budget.selection_init_lrs),
                  budget.selection_steps,
                  ", ".join(str(s) for s in budget.selection_seeds))]
  if values["reference_train_dir"]:
    lines += ["", "**Reference** (not meta-trained here): `%s` is the "
              "HierarchicalRNN of `%s/*/model.ckpt-0`, evaluated as the "
              "variants are (`python -m optimizer.provenance` tells how far "
              "it is from its own initialisation)." % (
                  plan.REFERENCE, values["reference_train_dir"])]
  lines += [
      "",
      "**Budgets** (every one is a flag of experiments/study.py): %d "
      "meta-iterations per variant (the papers: 100) at meta-learning rate "
      "%s (the commands: 1e-6)%s; evaluation runs of "
      "%d steps on the MLP sets and %d on the conv net (the papers: 10,000), "
      "seeds %s (the papers: 5-10); Adam and RMSProp over learning rates %s, "
      "the learned optimizers over their initial learning rate: their "
      "meta-training range (%s)%s. The grid point reported is chosen on the "
      "validation loss on held-out sets, else on the last-100 mean of the "
      "training loss (metatest.py's rule); the test split decides nothing. "
      "Hessian: top eigenvalue by %d Lanczos steps on at most %d training "
      "samples." % (
          budget.meta_iterations, budget.meta_learning_rate,
          ", the curriculum variants capped at %d curriculum stage(s)" %
          budget.curriculum_stages if budget.curriculum_stages and any(
              dict(v.base, **v.flags).get("if_cl") == "True"
              for v in chosen) else "",
          budget.mlp_steps, budget.conv_steps,
          ", ".join(str(s) for s in budget.seeds),
          ", ".join(budget.learning_rates),
          "; ".join(dict.fromkeys(
              "[%s, %s]" % (dict(v.base, **v.flags).get("min_lr", "1e-6"),
                            dict(v.base, **v.flags).get("max_lr", "1e-2"))
              for v in chosen)),
          "".join(", " + p for p in budget.init_lr_grid),
          budget.hessian_lanczos_steps, budget.hessian_max_samples),
      "",
      "Mean ± std over the evaluation seeds (std with ddof 0); with several "
      "meta-training seeds, the std over meta-training seeds (of their "
      "means) and over evaluation seeds (within a meta-training seed, "
      "averaged) are given apart. Bold: the best mean of a column. "
      "\"loss @k\" is the mini-batch training loss at step k, \"final\" "
      "the mean of the last 100 mini-batch losses.",
  ]
  if stand_in:
    lines += ["", "**Caveat:** the MNIST training files here are links to "
              "the MNIST test files (the training split could not be "
              "obtained on this machine), so meta-training and the "
              "validation variant's hold-out are drawn from the 10,000 test "
              "images, and the `mnist_mlp_relu` set trains on those same "
              "images."]
  if values["quick"]:
    lines += ["", "**Quick study** (`--quick`): budgets far too small to "
              "tell the variants apart; it checks the pipeline."]
  return "\n".join(lines)


def _write_report(values, budget, all_stages, command, out):
  study_dir = values["study_dir"]
  training = [s for s in all_stages if s.kind == "train"]
  changes = report.meta_parameter_changes(
      training, [s for s in all_stages if s.kind == "select"])
  content = report.collect(study_dir, all_stages, changes)
  plots = report.write_plots(study_dir, content)
  figure = report.write_training_plot(study_dir, training)
  if figure:
    plots.append(figure)
  text = report.markdown(content, header(values, budget, values["variants"],
                                         command), plots)
  atomic.write_json(os.path.join(study_dir, report.REPORT_JSON), content)
  path = os.path.join(study_dir, report.REPORT_FILE)
  atomic.write_text(path, text)
  out.write("report: %s\n" % path)
  return path


def run(values, explicit, extra=(), out=sys.stdout, command=None):
  """Runs (or resumes) the study the flag values describe.

  Returns:
    The report's path.

  Raises:
    StudyError: a bad flag or study folder.
    stages.StageFailed: a stage's command failed.
    interrupts.Interrupted: SIGINT or SIGTERM (the stage under way stopped
      cleanly; a rerun goes on from there).
  """
  if not values["study_dir"]:
    raise StudyError("--study_dir is empty: give the study's folder, e.g. "
                     "--study_dir=runs/study")
  values = names_from_flags(values, explicit)
  check_names(values)
  budget = budget_from_flags(values, explicit)
  values = dict(values, study_dir=os.path.abspath(values["study_dir"]))
  for name in ("data_dir", "reference_train_dir"):
    if values[name]:
      values[name] = os.path.abspath(values[name])
  check_reference(values["reference_train_dir"])
  command = command or [sys.argv[0]] + sys.argv[1:]
  study_dir = values["study_dir"]
  graph_mode.enable()
  all_stages = plan.stages(study_dir, budget, values["variants"],
                           values["evaluation_sets"], values["data_dir"],
                           list(extra), values["reference_train_dir"])
  with lock.DirectoryLock(study_dir, "experiments/study.py"):
    check_study_file(study_dir, {"budget": budget.as_dict(),
                                 "data_dir": values["data_dir"],
                                 "metarun_extra": list(extra)})
    if not values["report_only"]:
      progress = stages_lib.Progress(all_stages, budget, out)
      for index, stage in enumerate(all_stages):
        interrupts.check()
        if stages_lib.is_done(stage):
          progress.skipped(stage)
          continue
        progress.starting(stage, [s for s in all_stages[index:]
                                  if not stages_lib.is_done(s)])
        progress.finished(stage, stages_lib.run(stage, study_dir, out))
    return _write_report(values, budget, all_stages, command, out)


def main(argv):
  values = {name: FLAGS[name].value for name in FLAGS}
  explicit = {name for name in FLAGS if FLAGS[name].present}
  with interrupts.handling():
    try:
      run(values, explicit, extra=argv[1:])
    except (StudyError, stages_lib.StageFailed, lock.LockError) as e:
      sys.exit("study.py: %s" % e)
    except interrupts.Interrupted as e:
      sys.stderr.write("study.py: interrupted (%s); finished stages are kept, "
                       "rerun the same command to go on\n" % e)
      sys.exit(e.exit_status)


if __name__ == "__main__":
  define_flags()
  app.run(main)
