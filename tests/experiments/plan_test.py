"""Tests of the study's plan: every stage's command line is a valid one."""

from tests import test_util

import os

import tensorflow.compat.v1 as tf

import metarun
import metatest
from evaluation import config
from experiments import plan


def _metarun_values(argv):
  """metarun.py's flag values for `argv` (defaults for the others)."""
  values = {name: metarun.FLAGS[name].default for name in metarun.FLAGS}
  for argument in argv:
    name, value = argument[2:].split("=", 1)
    values[name] = metarun.FLAGS[name].parser.parse(value)
  return values


class PlanTest(tf.test.TestCase):

  def test_every_variant_is_the_readme_command_plus_its_flags(self):
    budget = plan.Budget()
    training = [s for s in plan.stages("s", budget, data_dir="d")
                if s.kind == "train"]
    self.assertEqual([s.variant for s in training], list(plan.VARIANT_NAMES))
    for variant, stage in zip(plan.VARIANTS, training):
      values = _metarun_values(stage.argv)
      metarun.validate_flags(values)
      for name, value in plan.TRAIN_L2O_SCALE.items():
        if name in variant.flags or name == "num_meta_iterations":
          continue
        self.assertEqual(values[name],
                         metarun.FLAGS[name].parser.parse(value), name)
      for name, value in variant.flags.items():
        self.assertEqual(values[name],
                         metarun.FLAGS[name].parser.parse(value), name)
      self.assertEqual(values["num_meta_iterations"], budget.meta_iterations)
      self.assertEqual(values["meta_learning_rate"],
                       float(budget.meta_learning_rate))
      self.assertEqual(values["seed"], 1)
      self.assertEqual(values["train_dir"],
                       os.path.join("s", variant.name, "meta_seed1"))
      self.assertEqual(values["data_dir"], "d")
      # Only the curriculum variants are capped.
      self.assertEqual(values["curriculum_stages"],
                       budget.curriculum_stages if values["if_cl"] else 0)
    names = {v.name: v.flags for v in plan.VARIANTS}
    self.assertEqual(names["l2o-scale"], {})
    self.assertEqual(names["l2o-scale+hessian"],
                     {"regularize_time": "always"})
    self.assertEqual(names["l2o-scale+validation"],
                     {"meta_objective_split": "validation"})

  def test_every_evaluation_is_a_valid_metatest_command(self):
    budget = plan.QUICK
    all_stages = plan.stages("s", budget)
    evaluations = [s for s in all_stages if s.kind == "evaluate"]
    self.assertLen(evaluations, len(plan.EVALUATION_SETS) *
                   (len(plan.VARIANTS) + 1 + len(plan.BASELINES)))
    for stage in evaluations:
      values, _ = metatest.parse_flags(["metatest.py"] + stage.argv)
      metatest.validate_flags(values)
      self.assertEqual(values["seeds"], [str(s) for s in budget.seeds])
      self.assertTrue(values["include_%s_problems" % stage.evaluation_set])
      self.assertEqual(values["save_dir"], stage.folder)
      if stage.variant in plan.VARIANT_NAMES:
        self.assertEqual(values["test_optimizer"], config.LEARNED)
        self.assertEqual(values["train_dir"],
                         os.path.join("s", stage.variant, "meta_seed1"))
        self.assertEqual(values["restore_model_name"], "model.ckpt-0")
      elif stage.variant == plan.INITIAL:
        # The start the variants trained from, recorded by the first.
        self.assertEqual(values["test_optimizer"], config.LEARNED)
        self.assertEqual(values["train_dir"], os.path.join(
            "s", plan.VARIANT_NAMES[0], "meta_seed1"))
        self.assertEqual(values["restore_model_name"], "model.ckpt-initial")
      else:
        baseline = {b.name: b for b in plan.BASELINES}[stage.variant]
        self.assertEqual(values["test_optimizer"], baseline.optimizer)
        self.assertEqual(values[baseline.flag], list(budget.learning_rates))
    # A reference checkpoint adds one learned-optimizer row per set, after
    # the variants, restored from its own folder.
    with_reference = plan.stages("s", budget, reference_dir="ref")
    added = [s for s in with_reference if s not in all_stages]
    self.assertEqual([s.variant for s in added],
                     [plan.REFERENCE] * len(plan.EVALUATION_SETS))
    for stage in added:
      values, _ = metatest.parse_flags(["metatest.py"] + stage.argv)
      metatest.validate_flags(values)
      self.assertEqual(values["test_optimizer"], config.LEARNED)
      self.assertEqual(values["train_dir"], "ref")
      self.assertEqual(values["restore_model_name"], "model.ckpt-0")
      names = [s.variant for s in with_reference
               if s.evaluation_set == stage.evaluation_set]
      self.assertEqual(names, list(plan.VARIANT_NAMES) + [plan.INITIAL] +
                       [plan.REFERENCE] + [b.name for b in plan.BASELINES])
    # Training first, every evaluation folder distinct.
    kinds = [s.kind for s in all_stages]
    self.assertEqual(kinds, sorted(kinds, key=["train", "evaluate"].index))
    self.assertLen({s.folder for s in evaluations}, len(evaluations))

  def test_the_sets_facts_are_the_problem_set_registry_s(self):
    self.assertEqual(
        [(e.name, e.heldout, e.conv) for e in plan.EVALUATION_SETS],
        [("mnist_mlp_relu", False, False),
         ("fashion_mnist_mlp_relu_heldout", True, False),
         ("fashion_mnist_conv_heldout", True, True)])
    budget = plan.Budget(mlp_steps=300, conv_steps=70)
    self.assertEqual([budget.steps(e) for e in plan.EVALUATION_SETS],
                     [300, 300, 70])

  def test_each_meta_seed_trains_every_variant_and_has_its_initial(self):
    budget = plan.Budget(meta_seeds=(1, 2))
    all_stages = plan.stages("s", budget, variants=["l2o-scale+cl+il",
                                                    "l2o-scale"])
    training = [(s.variant, s.meta_seed) for s in all_stages
                if s.kind == "train"]
    self.assertEqual(training, [("l2o-scale", 1), ("l2o-scale+cl+il", 1),
                                ("l2o-scale", 2), ("l2o-scale+cl+il", 2)])
    for stage in all_stages:
      if stage.kind == "train":
        self.assertEqual(_metarun_values(stage.argv)["seed"],
                         stage.meta_seed)
    initial = [s for s in all_stages if s.variant == plan.INITIAL]
    self.assertLen(initial, 2 * len(plan.EVALUATION_SETS))
    for stage in initial:
      values, _ = metatest.parse_flags(["metatest.py"] + stage.argv)
      self.assertEqual(values["train_dir"], os.path.join(
          "s", "l2o-scale", "meta_seed%d" % stage.meta_seed))
      self.assertEqual(values["save_dir"], os.path.join(
          "s", "eval", stage.evaluation_set, "initial",
          "meta_seed%d" % stage.meta_seed))
    self.assertLen({s.folder for s in all_stages}, len(all_stages))
    self.assertLen({s.name for s in all_stages}, len(all_stages))


if __name__ == "__main__":
  tf.test.main()


class RecipePlanTest(tf.test.TestCase):

  def test_the_recipe_variants_are_the_recipe_plus_their_flags(self):
    recipe = plan.PLANS["recipe"]
    budget = recipe.budget
    all_stages = plan.stages("s", budget, recipe.variants,
                             recipe.evaluation_sets)
    training = [s for s in all_stages if s.kind == "train"]
    self.assertEqual([(s.variant, s.meta_seed) for s in training],
                     [(v, m) for m in (1, 2, 3) for v in recipe.variants])
    for stage in training:
      variant = {v.name: v for v in plan.ALL_VARIANTS}[stage.variant]
      self.assertIs(variant.base, plan.RECIPE)
      values = _metarun_values(stage.argv)
      metarun.validate_flags(values)
      for name, value in plan.RECIPE.items():
        if name in variant.flags or name == "num_meta_iterations":
          continue
        self.assertEqual(values[name],
                         metarun.FLAGS[name].parser.parse(value), name)
      self.assertEqual(values["num_meta_iterations"], 60)
      self.assertTrue(values["horizon_sampling"])
      self.assertEqual(values["max_horizon"], 10000)
      self.assertEqual(values["meta_learning_rate"], 1e-5)
      self.assertEqual(values["seed"], stage.meta_seed)
      self.assertEqual(values["regularize_time"],
                       "always" if stage.variant == "recipe+hessian"
                       else "none")
      # Not a curriculum run: no cap.
      self.assertEqual(values["curriculum_stages"], 0)
    # The plan's variants are the recipe's, and the papers' plan keeps its.
    self.assertEqual(recipe.variants, ("recipe", "recipe+hessian"))
    self.assertEqual(plan.PLANS["variants"].variants, plan.VARIANT_NAMES)

  def test_the_recipe_is_measured_on_the_meta_training_net_too(self):
    recipe = plan.PLANS["recipe"]
    self.assertEqual(recipe.evaluation_sets[0], "mnist_mlp")
    self.assertEqual(set(recipe.evaluation_sets),
                     set(plan.ALL_EVALUATION_SET_NAMES))
    budget = recipe.budget
    self.assertLen(budget.learning_rates, 5)
    self.assertEqual(budget.init_lr_grid, budget.learning_rates)
    self.assertEqual(budget.mlp_steps, 10000)
    evaluations = [s for s in plan.stages("s", budget, recipe.variants,
                                          recipe.evaluation_sets)
                   if s.kind == "evaluate"]
    # Per set: 2 variants and their start per meta-seed, 2 baselines.
    self.assertLen(evaluations, 4 * (3 * 3 + 2))
    for stage in evaluations:
      values, _ = metatest.parse_flags(["metatest.py"] + stage.argv)
      metatest.validate_flags(values)
      self.assertEqual(values["num_testing_itrs"],
                       2000 if stage.evaluation_set.endswith("conv_heldout")
                       else 10000)
      if stage.variant == plan.INITIAL:
        self.assertEqual(values["train_dir"], os.path.join(
            "s", "recipe", "meta_seed%d" % stage.meta_seed))
      if values["test_optimizer"] == config.LEARNED:
        self.assertEqual(values["init_lr_grid"], list(budget.init_lr_grid))
    self.assertEqual(plan.ALL_EVALUATION_SETS[0].heldout, False)
    self.assertEqual(plan.ALL_EVALUATION_SETS[0].conv, False)

  def test_the_recipe_selects_each_run_s_checkpoint_on_other_seeds(self):
    recipe = plan.PLANS["recipe"]
    budget = recipe.budget
    all_stages = plan.stages("s", budget, recipe.variants,
                             recipe.evaluation_sets)
    kinds = [s.kind for s in all_stages]
    self.assertEqual(kinds, sorted(
        kinds, key=["train", "select", "evaluate"].index))
    chosen = [s for s in all_stages if s.kind == "select"]
    self.assertEqual([(s.variant, s.meta_seed) for s in chosen],
                     [(v, m) for m in (1, 2, 3) for v in recipe.variants])
    for stage in chosen:
      argv = [a for a in stage.argv
              if not a.startswith(plan.SELECT_EVERY_FLAG)]
      self.assertIn(plan.SELECT_EVERY_FLAG + "10", stage.argv)
      values, _ = metatest.parse_flags(
          ["metatest.py"] + argv + ["--restore_model_name=model.ckpt-5"])
      metatest.validate_flags(values)
      self.assertEqual(values["train_dir"], os.path.join(
          "s", stage.variant, "meta_seed%d" % stage.meta_seed))
      self.assertEqual(stage.folder, os.path.join(values["train_dir"],
                                                  "selection"))
      self.assertTrue(values["include_mnist_mlp_problems"])
      self.assertEqual(values["init_lr_grid"], ["3e-3", "1e-2"])
      self.assertEqual(values["num_testing_itrs"], 2000)
      self.assertFalse(set(values["seeds"]) & {str(s) for s in budget.seeds})
    for stage in all_stages:
      if stage.kind == "evaluate" and stage.variant in recipe.variants:
        values, _ = metatest.parse_flags(["metatest.py"] + stage.argv)
        self.assertEqual(values["restore_model_name"],
                         plan.SELECTED_CHECKPOINT)
    # The papers' plan keeps metarun.py's best checkpoint.
    self.assertNotIn("select", [s.kind for s in plan.stages("s", plan.Budget())])
