"""Tests of evaluation/config.py: the campaign's settings and their flags."""

from tests import test_util

import dataclasses

from absl import flags
import tensorflow.compat.v1 as tf

from evaluation import baselines
from evaluation import config
from run_control import configs


class ConfigTest(tf.test.TestCase):

  def test_the_optimizer_under_test_runs_first_and_once(self):
    optimizers = config.Optimizers(test_optimizer="Adam",
                                   compare_with=("SGD", "Adam", "L2o"))
    self.assertEqual(optimizers.names, ["Adam", "SGD", "L2o"])
    self.assertEqual(config.Optimizers().names, [config.LEARNED])
    self.assertEqual(config.OPTIMIZER_NAMES,
                     ("L2o", "SGD", "Adam", "Adagrad", "RMSProp",
                      "Momentum"))

  def test_conv_nets_are_measured_on_bounded_samples_by_default(self):
    automatic = config.Measurements()
    self.assertEqual(automatic.metrics_subset_size(conv=True), 2000)
    self.assertEqual(automatic.metrics_subset_size(conv=False), 5000)
    self.assertEqual(automatic.hessian_samples(conv=True), 2000)
    self.assertIsNone(automatic.hessian_samples(conv=False))
    # 0: every sample; a count: that count for every network.
    every = config.Measurements(metrics_subset=0, hessian_max_samples=0)
    self.assertIsNone(every.metrics_subset_size(conv=True))
    self.assertIsNone(every.hessian_samples(conv=True))
    given = config.Measurements(metrics_subset=300, hessian_max_samples=40)
    self.assertEqual(given.metrics_subset_size(conv=False), 300)
    self.assertEqual(given.hessian_samples(conv=True), 40)

  def test_the_flags_keep_the_original_names_and_defaults(self):
    rows = {name: (kind, default) for c in config.FLAG_CONFIGS
            for name, kind, default, _ in configs.flag_rows(c)}
    self.assertEqual(rows, {
        "test_optimizer": (str, "L2o"), "compare_with": (list, []),
        "train_dir": (str, "opt/"), "restore_model_name": (str, ""),
        "init_lr_grid": (list, []), "num_testing_itrs": (int, 100),
        "seeds": (list, ["6", "12", "18", "24", "30"]),
        "seed_batch_order": (bool, True), "record_every": (int, 0),
        "log_every": (int, 1000), "data_dir": (str, None),
        "metrics_every": (int, 0), "metrics_subset": (int, -1),
        "hessian_metrics": (bool, True), "hessian_lanczos_steps": (int, 30),
        "hessian_trace_probes": (int, 10), "hessian_max_samples": (int, -1),
        "hessian_spectrum": (bool, False), "save_dir": (str, "opt/"),
        "model_name": (str, "mt"), "plot": (bool, True)})
    # No flag of the configs is a baseline's learning-rate flag.
    self.assertEmpty(set(rows) & {b.flag for b in
                                  baselines.BASELINES.values()})

  def test_a_command_line_builds_the_configs(self):
    values = flags.FlagValues()
    for config_class in config.FLAG_CONFIGS:
      configs.define_flags(config_class, values)
    values(["prog", "--seeds=5,4", "--num_testing_itrs=9",
            "--hessian_metrics=false", "--compare_with=Adam"])
    parsed = {name: values[name].value for name in values}
    runs = configs.from_flags(config.Runs, parsed, problem_sets=("lasso",))
    self.assertEqual(runs, config.Runs(num_steps=9, seeds=(5, 4),
                                       problem_sets=("lasso",)))
    self.assertFalse(configs.from_flags(config.Measurements, parsed).hessian)
    self.assertEqual(configs.from_flags(config.Optimizers, parsed).names,
                     ["L2o", "Adam"])
    with self.assertRaises(dataclasses.FrozenInstanceError):
      runs.num_steps = 3


if __name__ == "__main__":
  tf.test.main()
