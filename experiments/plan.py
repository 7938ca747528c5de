"""What the study runs: its variants, evaluation sets, budgets and stages.

The study (experiments/study.py) meta-trains every variant of a `Plan`
with each meta-training seed on the MNIST MLP set and evaluates each
variant's best checkpoint, the start the variants of a seed trained from
(the row `INITIAL`: the first variant's recorded `model.ckpt-initial`) and
the tuned baselines on every evaluation set of the plan. Two plans:
`PLANS["variants"]` (the papers' comparison: the README's training command
and its enhancements, `VARIANTS`) and `PLANS["recipe"]` (the meta-training
recipe of docs/meta_training.md with and without the Hessian term,
`RECIPE_VARIANTS`, measured at 10,000 steps over 3 meta-training seeds). Each unit of work is
a `Stage`: one `metarun.py` or one `metatest.py` command line with its own
output folder under the study folder. This module only builds those command
lines; it runs nothing and reads no flags.
"""

import collections
import dataclasses
import os
from typing import Tuple

from problems import problem_sets

# The README's "Train L2O-Scale" command (the original README's training
# command), as flag values in its order. Every variant starts from it.
TRAIN_L2O_SCALE = collections.OrderedDict([
    ("regularize_time", "none"), ("alpha", "1e-4"), ("reg_optimizer", "True"),
    ("reg_option", "hessian-esd"), ("include_mnist_mlp_problems", "True"),
    ("num_problems", "1"), ("num_meta_iterations", "100"),
    ("fix_unroll", "True"), ("fix_unroll_length", "20"),
    ("evaluation_period", "1"), ("evaluation_epochs", "5"),
    ("use_second_derivatives", "False"), ("if_cl", "False"),
    ("if_mt", "False"), ("mt_ratio", "0.1"), ("mt_k", "1"),
])

# The meta-training recipe (docs/meta_training.md, chosen by the trials of
# docs/recipe_search.md, trial F): truncated backprop through 20-step
# unrolls of trajectories whose lengths are drawn log-uniformly in
# [100, 10,000] steps (carried across meta-iterations of 1,000 steps), Adam
# meta-updates with clipping and a bounded meta-loss, a fresh optimizer
# state every trajectory (as at test time) and initial learning rates drawn
# in [1e-3, 1e-2], the range the evaluation grids search, instead of the
# original's [1e-6, 1e-2]. The meta-learning rate (1e-5) and the
# meta-iterations (60) are the plan's budget.
RECIPE = collections.OrderedDict([
    ("regularize_time", "none"), ("alpha", "1e-4"), ("reg_optimizer", "True"),
    ("reg_option", "hessian-esd"), ("include_mnist_mlp_problems", "True"),
    ("num_problems", "1"), ("num_meta_iterations", "60"),
    ("fix_unroll", "True"), ("fix_unroll_length", "20"),
    ("fix_num_steps", "1000"), ("fix_num_steps_eval", "1000"),
    ("evaluation_period", "5"), ("evaluation_epochs", "2"),
    ("mini_batch_size", "1000"), ("reset_rnn_params", "False"),
    ("meta_optimizer", "adam"), ("gradient_clip_norm", "1"),
    ("meta_loss_ceiling", "2"), ("min_lr", "1e-3"), ("max_lr", "1e-2"),
    ("horizon_sampling", "True"), ("min_horizon", "100"),
    ("max_horizon", "10000"),
    ("use_second_derivatives", "False"), ("if_cl", "False"),
    ("if_mt", "False"),
])


class Variant(collections.namedtuple("Variant",
                                     "name flags description base")):
  """A meta-training command: `base` (a flag dict) with `flags` on top."""

  def __new__(cls, name, flags, description, base=TRAIN_L2O_SCALE):
    return super().__new__(cls, name, flags, description, base)


# The variants compared: the flags each sets on top of TRAIN_L2O_SCALE.
VARIANTS = (
    Variant("l2o-scale", {},
            "the README's \"Train L2O-Scale\" command (the Hessian term is "
            "off: --regularize_time=none)"),
    Variant("l2o-scale+hessian", {"regularize_time": "always"},
            "the same with the Hessian-ESD term on in every unroll"),
    Variant("l2o-scale+cl+il", {"if_cl": "True", "if_mt": "True"},
            "the enhanced command: curriculum and imitation"),
    Variant("l2o-scale+cl+il+hessian",
            {"if_cl": "True", "if_mt": "True", "regularize_time": "always"},
            "the enhanced command with the Hessian-ESD term on"),
    Variant("l2o-scale+validation", {"meta_objective_split": "validation"},
            "meta-objective on held-out validation samples"),
)
VARIANT_NAMES = tuple(v.name for v in VARIANTS)

RECIPE_VARIANTS = (
    Variant("recipe", {}, "the meta-training recipe (docs/meta_training.md; "
            "the Hessian term off)", base=RECIPE),
    Variant("recipe+hessian", {"regularize_time": "always"},
            "the recipe with the Hessian-ESD term on in every unroll",
            base=RECIPE),
)
ALL_VARIANTS = VARIANTS + RECIPE_VARIANTS
ALL_VARIANT_NAMES = tuple(v.name for v in ALL_VARIANTS)

class EvaluationSet(collections.namedtuple("EvaluationSet",
                                           "name description")):
  """A metatest.py problem set of the study (--include_<name>_problems).

  Whether it is held out or a conv net is the problem-set registry's fact
  (`problem_sets.EVALUATION_CHOICES`), read here.
  """

  @property
  def heldout(self):
    return problem_sets.EVALUATION_CHOICES[self.name].heldout

  @property
  def conv(self):
    return problem_sets.EVALUATION_CHOICES[self.name].conv


EVALUATION_SETS = (
    EvaluationSet("mnist_mlp_relu",
                  "the original benchmark: MNIST ReLU MLP 784-20-10 trained "
                  "on the MNIST test split; training loss, as the papers"),
    EvaluationSet("fashion_mnist_mlp_relu_heldout",
                  "Fashion-MNIST ReLU MLP 784-20-10 (55,000 / 5,000 / "
                  "10,000): an unseen data set"),
    EvaluationSet("fashion_mnist_conv_heldout",
                  "Fashion-MNIST pooled conv net, linear logits: an unseen "
                  "data set and architecture"),
)
EVALUATION_SET_NAMES = tuple(e.name for e in EVALUATION_SETS)
# The meta-training net itself (its test-split copy, as the original's
# evaluation): the recipe's first measure.
META_TRAINING_SET = EvaluationSet(
    "mnist_mlp", "the meta-training net: MNIST sigmoid MLP 784-20-10 (the "
    "set the optimizers meta-trained on); training loss")
ALL_EVALUATION_SETS = (META_TRAINING_SET,) + EVALUATION_SETS
ALL_EVALUATION_SET_NAMES = tuple(e.name for e in ALL_EVALUATION_SETS)

# Baselines: the display name and metatest.py's optimizer name and its
# learning-rate flag.
Baseline = collections.namedtuple("Baseline", "name optimizer flag")
BASELINES = (Baseline("adam", "Adam", "adam_learning_rate"),
             Baseline("rmsprop", "RMSProp", "rmsprop_learning_rate"))

# The row of an already trained HierarchicalRNN evaluated beside the
# variants (study.py --reference_train_dir), e.g. the original authors'
# published checkpoint (which is its own random initialisation: six
# meta-updates at 1e-6; `python -m optimizer.provenance` shows it).
REFERENCE = "published"
# The row of the variants' starting point: what meta-training added is a
# variant's difference from it.
INITIAL = "initial"
BEST_CHECKPOINT = "model.ckpt-0"
INITIAL_CHECKPOINT = "model.ckpt-initial"
# Where a selection stage (experiments/selection.py) copies the checkpoint
# it chose, and its own argument among its metatest.py flags.
SELECTED_CHECKPOINT = "model.ckpt-selected"
SELECT_EVERY_FLAG = "--select_every="


@dataclasses.dataclass(frozen=True)
class Budget:
  """Every budget of a study; each field is a flag of experiments/study.py.

  The defaults fit the whole study in 90 minutes on a 2-core machine (72
  measured, docs/study.md, which also says what each stage took); `QUICK`
  shrinks them so that a test runs the pipeline in under 3 minutes.
  """
  meta_iterations: int = 20
  # The commands' own --meta_learning_rate (1e-6, the original flag default)
  # hardly moves the meta-parameters in a budget this size (docs/study.md).
  meta_learning_rate: str = "1e-3"
  curriculum_stages: int = 2
  # metarun.py --seed of the variants: each seed meta-trains every variant
  # and has its own `initial` row.
  meta_seeds: Tuple[int, ...] = (1,)
  seeds: Tuple[int, ...] = (6, 12, 18)
  mlp_steps: int = 2000
  conv_steps: int = 1000
  learning_rates: Tuple[str, ...] = ("1e-3", "3e-3", "1e-2")
  init_lr_grid: Tuple[str, ...] = ("1e-3", "3e-3")
  hessian_max_samples: int = 5000
  hessian_lanczos_steps: int = 20
  hessian_trace_probes: int = 2
  # Checkpoint selection (experiments/selection.py): with seeds, each
  # variant's numbered checkpoints (every `selection_every`-th
  # meta-iteration and the last) are scored on the meta-training problem on
  # these seeds, each at its best of its own initial-learning-rate range and
  # `selection_init_lrs`, and the best is evaluated; without,
  # metarun.py's model.ckpt-0 (its best evaluation) is.
  selection_seeds: Tuple[int, ...] = ()
  selection_steps: int = 2000
  selection_init_lrs: Tuple[str, ...] = ("3e-3", "1e-2")
  selection_every: int = 10
  # Extra metarun.py flag values (the quick study's shorter unrolls).
  metarun_flags: Tuple[Tuple[str, str], ...] = ()
  # Extra metatest.py flag values.
  metatest_flags: Tuple[Tuple[str, str], ...] = ()

  def as_dict(self):
    return {f.name: (list(getattr(self, f.name))
                     if isinstance(getattr(self, f.name), tuple)
                     else getattr(self, f.name))
            for f in dataclasses.fields(self)}

  def steps(self, evaluation_set):
    return self.conv_steps if evaluation_set.conv else self.mlp_steps


QUICK = Budget(
    meta_iterations=2, curriculum_stages=1, seeds=(6, 12), mlp_steps=120,
    conv_steps=50, learning_rates=("3e-3",), init_lr_grid=(),
    hessian_max_samples=200, hessian_lanczos_steps=5, hessian_trace_probes=1,
    metarun_flags=(("fix_num_steps", "40"), ("fix_num_steps_eval", "40"),
                   ("evaluation_epochs", "1"), ("mini_batch_size", "500"),
                   ("hessian_itrs", "2")),
    metatest_flags=(("metrics_subset", "200"), ("metrics_every", "50")))


# The recipe's measurement (issue 31): 3 meta-training seeds, 10,000-step
# runs on the MLP sets, 5-point grids for every optimizer (the learned ones
# also evaluate their own meta-training range, as metatest.py always does).
_FIVE_POINTS = ("1e-3", "3e-3", "1e-2", "3e-2", "1e-1")
RECIPE_BUDGET = Budget(
    meta_iterations=60, meta_learning_rate="1e-5", meta_seeds=(1, 2, 3),
    seeds=(6, 12, 18), mlp_steps=10000, conv_steps=2000,
    learning_rates=_FIVE_POINTS, init_lr_grid=_FIVE_POINTS,
    selection_seeds=(101, 102))
RECIPE_QUICK = dataclasses.replace(
    QUICK, metarun_flags=QUICK.metarun_flags + (("evaluation_period", "1"),),
    selection_seeds=(101,), selection_steps=100, selection_every=2,
    selection_init_lrs=("3e-3",))


class Plan(collections.namedtuple(
    "Plan", "name title variants evaluation_sets budget quick")):
  """A study: its variants and evaluation sets (names) and budgets."""


PLANS = collections.OrderedDict([
    ("variants", Plan("variants", "Study: which training makes L2O-Scale "
                      "better?", VARIANT_NAMES, EVALUATION_SET_NAMES,
                      Budget(), QUICK)),
    ("recipe", Plan("recipe", "Recipe: does meta-training make L2O-Scale "
                    "better than its start?",
                    tuple(v.name for v in RECIPE_VARIANTS),
                    ALL_EVALUATION_SET_NAMES, RECIPE_BUDGET, RECIPE_QUICK)),
])


class Stage(collections.namedtuple(
    "Stage", "kind name program argv folder variant evaluation_set "
    "meta_seed")):
  """One command of the study.

  Attributes:
    kind: "train" (metarun.py), "select" (metatest.py on a run's
      checkpoints, experiments/selection.py) or "evaluate" (metatest.py).
    name: e.g. "train l2o-scale, meta-seed 1" or "evaluate adam on
      mnist_mlp_relu".
    program: "metarun.py" or "metatest.py".
    argv: the flags, as "--name=value" strings.
    folder: its output folder (a variant's --train_dir, or --save_dir).
    variant: the row's name: a variant, INITIAL, REFERENCE or a baseline.
    evaluation_set: the evaluation set's name (None for training).
    meta_seed: the meta-training seed of a variant or INITIAL (else None).
  """


Row = collections.namedtuple("Row", "name meta_seed train_dir checkpoint")
Row.__doc__ = """An optimizer the study evaluates: a baseline (train_dir
None) or a learned one restored from `checkpoint` of `train_dir`."""


def train_dir(study_dir, variant, meta_seed):
  return os.path.join(study_dir, variant, "meta_seed%d" % meta_seed)


def evaluation_dir(study_dir, evaluation_set, name, meta_seed=None):
  folder = os.path.join(study_dir, "eval", evaluation_set, name)
  if meta_seed is not None:
    folder = os.path.join(folder, "meta_seed%d" % meta_seed)
  return folder


def _argv(values):
  return ["--%s=%s" % (name, value) for name, value in values.items()]


def training_flags(variant, budget, study_dir, meta_seed, data_dir=None):
  """The metarun.py flags of `variant` (a `Variant`) with --seed=meta_seed."""
  values = collections.OrderedDict(variant.base)
  values.update(variant.flags)
  values["num_meta_iterations"] = str(budget.meta_iterations)
  values["meta_learning_rate"] = budget.meta_learning_rate
  values.update(budget.metarun_flags)
  if values.get("if_cl") == "True":
    values["curriculum_stages"] = str(budget.curriculum_stages)
  values["train_dir"] = train_dir(study_dir, variant.name, meta_seed)
  values["seed"] = str(meta_seed)
  if data_dir:
    values["data_dir"] = data_dir
  return values


def evaluation_flags(row, evaluation_set, budget, study_dir, data_dir=None):
  """The metatest.py flags of `row` (a `Row`) on an evaluation set."""
  values = collections.OrderedDict()
  baseline = {b.name: b for b in BASELINES}.get(row.name)
  if baseline is None:
    values["train_dir"] = row.train_dir
    values["restore_model_name"] = row.checkpoint
    if budget.init_lr_grid:
      values["init_lr_grid"] = ",".join(budget.init_lr_grid)
  else:
    values["test_optimizer"] = baseline.optimizer
    values[baseline.flag] = ",".join(budget.learning_rates)
  values["save_dir"] = evaluation_dir(study_dir, evaluation_set.name,
                                      row.name, row.meta_seed)
  values["include_%s_problems" % evaluation_set.name] = "True"
  values["model_name"] = evaluation_set.name
  values["num_testing_itrs"] = str(budget.steps(evaluation_set))
  values["seeds"] = ",".join(str(s) for s in budget.seeds)
  values["hessian_max_samples"] = str(budget.hessian_max_samples)
  values["hessian_lanczos_steps"] = str(budget.hessian_lanczos_steps)
  values["hessian_trace_probes"] = str(budget.hessian_trace_probes)
  values["log_every"] = str(max(1, budget.steps(evaluation_set) // 4))
  values["plot"] = "False"
  values.update(budget.metatest_flags)
  if data_dir:
    values["data_dir"] = data_dir
  return values


def evaluated_checkpoint(budget):
  """The checkpoint of each variant that the evaluations restore."""
  return SELECTED_CHECKPOINT if budget.selection_seeds else BEST_CHECKPOINT


def selection_dir(study_dir, variant, meta_seed):
  return os.path.join(train_dir(study_dir, variant, meta_seed), "selection")


def selection_flags(variant, budget, study_dir, meta_seed, data_dir=None):
  """The selection stage's arguments: the metatest.py flags of one scoring
  run (without --restore_model_name and --save_dir) and SELECT_EVERY_FLAG."""
  values = collections.OrderedDict([
      ("train_dir", train_dir(study_dir, variant.name, meta_seed)),
      ("include_%s_problems" % META_TRAINING_SET.name, "True"),
      ("model_name", META_TRAINING_SET.name),
      ("num_testing_itrs", str(budget.selection_steps)),
      ("seeds", ",".join(str(s) for s in budget.selection_seeds)),
      ("init_lr_grid", ",".join(budget.selection_init_lrs)),
      ("hessian_metrics", "False"),
      ("log_every", str(max(1, budget.selection_steps // 2))),
      ("plot", "False")])
  if data_dir:
    values["data_dir"] = data_dir
  return _argv(values) + [SELECT_EVERY_FLAG + str(budget.selection_every)]


def rows(study_dir, budget, variants=VARIANT_NAMES, reference_dir=None):
  """The optimizers every evaluation set gets, in table order: per
  meta-training seed the variants, then their INITIAL (the first variant's
  recorded start); the REFERENCE; the baselines."""
  chosen = [v.name for v in ALL_VARIANTS if v.name in variants]
  result = []
  for meta_seed in budget.meta_seeds:
    result += [Row(name, meta_seed, train_dir(study_dir, name, meta_seed),
                   evaluated_checkpoint(budget)) for name in chosen]
    if chosen:
      result.append(Row(INITIAL, meta_seed,
                        train_dir(study_dir, chosen[0], meta_seed),
                        INITIAL_CHECKPOINT))
  if reference_dir:
    result.append(Row(REFERENCE, None, reference_dir, BEST_CHECKPOINT))
  return result + [Row(b.name, None, None, None) for b in BASELINES]


def _label(name, meta_seed):
  return name if meta_seed is None else "%s, meta-seed %d" % (name,
                                                              meta_seed)


def stages(study_dir, budget, variants=VARIANT_NAMES,
           evaluation_sets=EVALUATION_SET_NAMES, data_dir=None,
           metarun_extra=(), reference_dir=None):
  """Every stage of a study, meta-training first.

  Args:
    study_dir: the study folder.
    budget: a `Budget`.
    variants: names of the variants to run (of ALL_VARIANT_NAMES).
    evaluation_sets: names of the evaluation sets (of
      ALL_EVALUATION_SET_NAMES).
    data_dir: data folder passed to both programs (None: their default).
    metarun_extra: further metarun.py arguments (e.g. a cluster's
      --ps_hosts=...), appended to every training command.
    reference_dir: a --train_dir holding a trained HierarchicalRNN's
      model.ckpt-0, evaluated as the row `REFERENCE` (None: no such row).

  Returns:
    A list of `Stage`.
  """
  chosen = [v for v in ALL_VARIANTS if v.name in variants]
  sets = [e for e in ALL_EVALUATION_SETS if e.name in evaluation_sets]
  result = []
  for meta_seed in budget.meta_seeds:
    for variant in chosen:
      values = training_flags(variant, budget, study_dir, meta_seed,
                              data_dir)
      result.append(Stage(
          "train", "train " + _label(variant.name, meta_seed), "metarun.py",
          _argv(values) + list(metarun_extra), values["train_dir"],
          variant.name, None, meta_seed))
  if budget.selection_seeds:
    for meta_seed in budget.meta_seeds:
      for variant in chosen:
        result.append(Stage(
            "select", "select %s's checkpoint" % _label(variant.name,
                                                         meta_seed),
            "metatest.py", selection_flags(variant, budget, study_dir,
                                           meta_seed, data_dir),
            selection_dir(study_dir, variant.name, meta_seed), variant.name,
            None, meta_seed))
  for evaluation_set in sets:
    for row in rows(study_dir, budget, variants, reference_dir):
      values = evaluation_flags(row, evaluation_set, budget, study_dir,
                                data_dir)
      result.append(Stage(
          "evaluate", "evaluate %s on %s" % (_label(row.name, row.meta_seed),
                                              evaluation_set.name),
          "metatest.py", _argv(values), values["save_dir"], row.name,
          evaluation_set.name, row.meta_seed))
  return result
