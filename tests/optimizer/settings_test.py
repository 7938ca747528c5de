"""Tests of optimizer.settings: the shared flag table and optimizer.json."""

from tests import test_util

import dataclasses
import inspect
import json
import os

from absl import flags
import tensorflow.compat.v1 as tf

import optimizer_flags
from optimizer import configs as optimizer_configs
from optimizer import coordinatewise_rnn
from optimizer import hierarchical_rnn
from optimizer import settings
from optimizer import trainable_adam
from run_control import configs

# The HierarchicalRNN constructor flags of the original, with defaults
# (training_and_evaluation.md, sections 1.2 and 1.3).
ORIGINAL_DEFAULTS = {
    "optimizer": "HierarchicalRNN", "cell_size": 20, "num_cells": 2,
    "cell_cls": "GRUCell", "min_lr": 1e-6, "max_lr": 1e-2,
    "zero_init_lr_weights": True, "use_relative_lr": True,
    "use_extreme_indicator": False, "use_log_means_squared": True,
    "use_problem_lr_mean": True, "learnable_decay": True,
    "dynamic_output_scale": True, "use_log_objective": True,
    "use_attention": False, "use_second_derivatives": True,
    "num_gradient_scales": 4, "max_log_lr": 33,
    "objective_training_max_multiplier": -1, "use_gradient_shortcut": True,
    "use_lr_shortcut": False, "use_grad_products": True,
    "use_multiple_scale_decays": False, "use_numerator_epsilon": False,
    "learnable_inp_decay": True, "learnable_rnn_init": True,
    "biasgrucell_scale": 0.5, "biasgrucell_gate_bias_init": 2.2,
    "hrnn_rnn_readout_scale": 0.5, "hrnn_default_decay_var_init": 2.2,
    "scale_decay_bias_init": 3.2, "learning_rate_momentum_logit_init": 3.2,
    "hrnn_affine_scale": 0.5, "crnn_rnn_readout_scale": 0.5,
    "crnn_default_decay_var_init": 2.2,
}


class SettingsTest(test_util.TestCase):

  def test_defaults_are_the_original_flag_defaults(self):
    self.assertEqual(settings.defaults(), ORIGINAL_DEFAULTS)

  def test_define_flags_gives_each_flag_its_type_and_default(self):
    values = flags.FlagValues()
    optimizer_flags.define(values)
    values(["prog", "--max_log_lr=2.5", "--nouse_attention"])
    self.assertEqual(values["max_log_lr"].value, 2.5)
    self.assertIs(values["use_attention"].value, False)
    self.assertEqual(values["num_gradient_scales"].value, 4)
    self.assertEqual(sorted(values), sorted(ORIGINAL_DEFAULTS))

  def test_hrnn_spec_uses_the_flag_defaults_and_fixed_level_sizes(self):
    spec = settings.optimizer_spec(settings.defaults())
    self.assertIs(spec.callable, hierarchical_rnn.HierarchicalRNN)
    self.assertEqual(spec.args, ([10, 20, 20],))
    self.assertTrue(spec.kwargs["use_problem_lr_mean"])
    self.assertEqual(spec.kwargs["init_lr_range"], (1e-6, 1e-2))

  def test_a_seed_reaches_only_optimizers_that_take_one(self):
    seeded = settings.optimizer_spec(settings.defaults(), random_seed=3)
    self.assertEqual(seeded.kwargs["random_seed"], 3)
    self.assertNotIn("random_seed",
                     settings.optimizer_spec(settings.defaults()).kwargs)
    glr = settings.optimizer_spec(
        settings.complete({"optimizer": "GlobalLearningRate"}), random_seed=3)
    self.assertNotIn("random_seed", glr.kwargs)

  def test_log_directory_name_is_the_originals(self):
    self.assertEqual(settings.log_directory_name(settings.defaults()),
                     "HierarchicalRNN_GRUCell_20_2")

  def test_save_then_load_round_trips(self):
    folder = self.make_tempdir()
    values = settings.complete({"num_gradient_scales": 3,
                                "use_attention": True})
    path = settings.save(folder, dict(values, train_dir="ignored"))
    self.assertEqual(settings.load(folder), values)
    with open(path) as f:
      self.assertEqual(sorted(json.load(f)), sorted(settings.NAMES))
    # metarun.py decides when the file is written (a run that really
    # starts); save writes what it is given.
    settings.save(folder, settings.defaults())
    self.assertEqual(settings.load(folder), settings.defaults())

  def test_a_hand_edited_file_is_refused_naming_the_setting(self):
    folder = self.make_tempdir()
    path = os.path.join(folder, settings.CONFIG_FILE)
    for text, expected in (
        ('"optimizer": "Bogus"', '"optimizer": "Bogus": unknown optimizer; '
         'expected one of HierarchicalRNN, CoordinatewiseRNN, '
         'GlobalLearningRate, LearningRateSchedule, TrainableAdam'),
        ('"cell_cls": "GRU"', '"cell_cls": "GRU": unknown cell; expected one '
         'of '),
        ('"min_lr": -1', '"min_lr": -1: must be positive'),
        ('"min_lr": NaN', '"min_lr": NaN: must be a finite number'),
        ('"max_log_lr": Infinity', '"max_log_lr": Infinity: must be a finite '
         'number'),
        ('"min_lr": 0.1', '"min_lr": 0.1: exceeds max_lr (0.01)'),
        ('"cell_size": "twenty"', '"cell_size": "twenty": expected an '
         'integer'),
        ('"cell_size": 0', '"cell_size": 0: must be positive'),
        ('"num_cells": 2.7', '"num_cells": 2.7: expected an integer'),
        ('"num_gradient_scales": true', '"num_gradient_scales": true: '
         'expected an integer'),
        ('"use_attention": "yes"', '"use_attention": "yes": expected true or '
         'false'),
        ('"use_attention": 1', '"use_attention": 1: expected true or false'),
        ('"hrnn_affine_scale": null', '"hrnn_affine_scale": null: expected a '
         'number')):
      with open(path, "w") as f:
        f.write("{%s}\n" % text)
      with self.assertRaises(ValueError) as caught:
        settings.load(folder)
      self.assertTrue(str(caught.exception).startswith(
          "%s: %s" % (path, expected)), (text, str(caught.exception)))
      self.assertNotIn("\n", str(caught.exception))
    # Integers are numbers; the original's own values load.
    with open(path, "w") as f:
      f.write('{"max_log_lr": 33, "min_lr": 1e-06, "max_lr": 1e-06}\n')
    self.assertEqual(settings.load(folder)["max_log_lr"], 33)

  def test_check_accepts_the_flag_defaults_and_refuses_bad_values(self):
    settings.check(settings.defaults())
    with self.assertRaises(settings.SettingError) as caught:
      settings.check(dict(settings.defaults(), max_lr=float("inf")))
    self.assertEqual((caught.exception.name, caught.exception.reason),
                     ("max_lr", "must be a finite number"))

  def test_used_names_are_the_settings_an_optimizer_is_built_from(self):
    hrnn = settings.defaults()
    used = settings.used_names(hrnn)
    self.assertIn("max_lr", used)
    self.assertIn("num_gradient_scales", used)
    self.assertNotIn("crnn_rnn_readout_scale", used)
    self.assertNotIn("cell_size", used)  # it only names the log directory
    glr = dict(hrnn, optimizer="GlobalLearningRate")
    self.assertNotIn("max_lr", settings.used_names(glr))
    self.assertIn("use_numerator_epsilon", settings.used_names(glr))
    # Settings an optimizer does not use are no difference.
    self.assertEqual(settings.differences(
        hrnn, dict(hrnn, crnn_rnn_readout_scale=0.7, max_lr=1e-3,
                   use_numerator_epsilon=True)),
        ["max_lr", "use_numerator_epsilon"])
    self.assertEqual(settings.differences(hrnn, glr), ["optimizer"])

  def test_load_without_file_is_none(self):
    self.assertIsNone(settings.load(self.make_tempdir()))

  def test_load_fills_settings_missing_from_an_older_file(self):
    folder = self.make_tempdir()
    with open(os.path.join(folder, settings.CONFIG_FILE), "w") as f:
      json.dump({"use_attention": True}, f)
    loaded = settings.load(folder)
    self.assertTrue(loaded["use_attention"])
    self.assertEqual(loaded["max_log_lr"], 33)

  def test_load_names_the_file_of_bad_content(self):
    folder = self.make_tempdir()
    path = os.path.join(folder, settings.CONFIG_FILE)
    for content in ("{not json", "[1, 2]", '{"no_such_setting": 1}'):
      with open(path, "w") as f:
        f.write(content)
      with self.assertRaisesRegex(ValueError, "optimizer.json"):
        settings.load(folder)

  def test_complete_rejects_unknown_names(self):
    with self.assertRaisesRegex(ValueError, "unknown optimizer setting"):
      settings.complete({"num_scales": 3})

  def test_flag_table_rows_come_from_the_configs(self):
    rows = {row[0]: row for row in settings.FLAG_TABLE}
    for config_class in (optimizer_configs.HRNNConfig,
                         optimizer_configs.CRNNConfig):
      for row in configs.flag_rows(config_class):
        self.assertEqual(rows[row[0]], row)
    # Flag defaults that differ from the constructors'.
    hrnn = optimizer_configs.HRNNConfig()
    self.assertFalse(hrnn.use_problem_lr_mean)
    self.assertTrue(rows["use_problem_lr_mean"][2])
    self.assertEqual(hrnn.obj_train_max_multiplier, -1)
    self.assertIs(rows["objective_training_max_multiplier"][1], float)

  def test_an_old_optimizer_json_builds_the_same_optimizer(self):
    folder = self.make_tempdir()
    # As the code before the config objects wrote it (every setting).
    with open(os.path.join(folder, settings.CONFIG_FILE), "w") as f:
      json.dump(dict(ORIGINAL_DEFAULTS, use_attention=True), f)
    spec = settings.optimizer_spec(settings.load(folder), random_seed=2)
    optimizer = spec.build()
    self.assertEqual(optimizer.config, optimizer_configs.HRNNConfig(
        use_attention=True, use_problem_lr_mean=True,
        use_gradient_shortcut=True, use_grad_products=True, random_seed=2,
        max_log_lr=33., obj_train_max_multiplier=-1.))


class ConfigTest(test_util.TestCase):

  def test_constructors_expose_a_frozen_config(self):
    optimizer = hierarchical_rnn.HierarchicalRNN(
        [4, 5], init_lr_range=(1e-3, 1e-2), use_gradient_shortcut=True)
    self.assertEqual(optimizer.config.level_sizes, (4, 5))
    self.assertEqual(optimizer.config.init_lr_range, (1e-3, 1e-2))
    self.assertTrue(optimizer.use_gradient_shortcut)
    with self.assertRaises(dataclasses.FrozenInstanceError):
      optimizer.config.use_attention = True

  def test_constructor_defaults_are_the_configs(self):
    # The constructors keep the original's keyword arguments; their
    # defaults must be the config's, which the flag table derives from.
    for constructor, config_class in (
        (hierarchical_rnn.HierarchicalRNN, optimizer_configs.HRNNConfig),
        (coordinatewise_rnn.CoordinatewiseRNN, optimizer_configs.CRNNConfig)):
      defaults = {f.name: f.default for f in dataclasses.fields(config_class)}
      parameters = inspect.signature(constructor).parameters
      checked = 0
      for name, parameter in parameters.items():
        if parameter.default is inspect.Parameter.empty or (
            parameter.kind is inspect.Parameter.VAR_KEYWORD):
          continue
        self.assertIn(name, defaults, constructor.__name__)
        self.assertEqual(tuple(parameter.default)
                         if isinstance(parameter.default, (list, tuple))
                         else parameter.default, defaults[name],
                         "%s(%s=...)" % (constructor.__name__, name))
        checked += 1
      self.assertGreater(checked, 5)

  def test_unknown_keyword_arguments_are_named(self):
    for build in (
        lambda: hierarchical_rnn.HierarchicalRNN([4], no_such_setting=1),
        lambda: coordinatewise_rnn.CoordinatewiseRNN(
            [3], "GRUCell", no_such_setting=1),
        lambda: trainable_adam.TrainableAdam(no_such_setting=1)):
      with self.assertRaisesRegex(TypeError, "no_such_setting"):
        build()


if __name__ == "__main__":
  tf.test.main()
