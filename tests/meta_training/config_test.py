"""Tests of meta_training.config: the settings and their flags."""

from tests import test_util  # pylint: disable=unused-import

import tensorflow.compat.v1 as tf

import metarun
from meta_training import config
from run_control import configs

# The original's meta-training flags and their defaults
# (docs/reference/training_and_evaluation.md, sections 1.2-1.4).
ORIGINAL_DEFAULTS = {
    "num_problems": 1, "num_meta_iterations": 5, "num_unroll_scale": 40,
    "min_num_unrolls": 10, "num_partial_unroll_itr_scale": 20,
    "min_num_itr_partial_unroll": 10, "meta_learning_rate": 1e-6,
    "gradient_clip_level": 1e4, "if_cl": False, "fix_unroll": False,
    "fix_unroll_length": 20, "fix_num_steps": 100, "fix_num_steps_eval": 100,
    "evaluation_period": 1, "evaluation_epochs": 20, "save_period": 1,
    "objective_training_max_multiplier": -1, "mini_batch_size": 10000,
    "l2_reg": 0., "rms_decay": 0.9, "rms_epsilon": 1e-20,
    "data_freeze": False, "reset_rnn_params": True,
    "regularize_time": "posterior", "reg_scale": 0.5, "if_mt": False,
    "mt_ratio": 0.1, "mt_k": 1, "alpha": 5e-4, "beta": 1e-4,
    "reg_optimizer": False, "reg_optimizee": False, "hessian_itrs": 10,
    "reg_option": "hessian",
    # Additions of this port.
    "write_histograms": False, "fixed_hessian_probes": False,
    "curriculum_stages": 0, "meta_objective_split": "train",
    "gradient_estimator": "truncated_backprop", "meta_optimizer": "rmsprop",
    "meta_adam_beta1": 0.9, "meta_adam_beta2": 0.999,
    "meta_adam_epsilon": 1e-8, "gradient_clip_norm": 0.,
    "meta_learning_rate_warmup": 0, "meta_learning_rate_schedule": "constant",
    "meta_learning_rate_decay_steps": 0, "meta_loss_ceiling": 0.,
    "meta_parameter_groups": [], "es_pairs": 8, "es_sigma": 0.01,
    "task_batch_size": 1, "horizon_sampling": False, "min_horizon": 100,
    "max_horizon": 1000, "stagger_tasks": True,
}


def _rows():
  return [row for c in config.FLAG_CONFIGS for row in configs.flag_rows(c)]


class ConfigFlagsTest(tf.test.TestCase):

  def test_the_settings_are_the_original_meta_training_flags(self):
    self.assertCountEqual([name for name, _, _, _ in _rows()],
                          ORIGINAL_DEFAULTS)
    for name, _, default, _ in _rows():
      self.assertEqual(default, ORIGINAL_DEFAULTS[name], name)

  def test_metarun_defines_every_setting_with_its_type_and_default(self):
    kinds = {bool: "bool", int: "int", float: "float", str: "string",
             list: "comma separated list of strings"}
    for name, kind, default, _ in _rows():
      self.assertIn(name, metarun.FLAGS, name)
      self.assertEqual(metarun.FLAGS[name].default, default, name)
      self.assertEqual(metarun.FLAGS[name].flag_type(), kinds[kind], name)

  def test_from_flags_reads_the_original_flag_names(self):
    schedule = configs.from_flags(config.Schedule, {
        "fix_unroll_length": 40, "if_cl": True, "fix_unroll": True})
    self.assertEqual(schedule.unroll_length, 40)
    self.assertTrue(schedule.curriculum)
    self.assertTrue(schedule.fixed)
    imitation = configs.from_flags(config.Imitation,
                                   {"if_mt": True, "mt_ratio": 0.5,
                                    "mt_k": 3})
    self.assertEqual((imitation.enabled, imitation.ratio,
                      imitation.teacher_steps), (True, 0.5, 3))

  def test_library_defaults_are_those_of_train_optimizer_before(self):
    meta = config.MetaOptimizer()
    self.assertEqual((meta.learning_rate, meta.gradient_clip), (1e-4, 5.))
    self.assertEqual(configs.to_flags(meta)["meta_learning_rate"], 1e-4)

  def test_regularizer_arguments_need_a_function(self):
    self.assertEqual(config.Regularizer(on_meta_objective=True)
                     .graph_arguments(), {})
    fn = lambda objective, params: objective
    arguments = config.Regularizer(fn=fn, on_optimizee=True,
                                   optimizee_weight=0.5).graph_arguments()
    self.assertEqual(arguments, dict(regularizer_fn=fn,
                                     meta_regularizer_weight=None,
                                     optimizee_regularizer_weight=0.5))


if __name__ == "__main__":
  tf.test.main()
