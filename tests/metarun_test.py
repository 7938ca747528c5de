"""Tests of metarun.py: the flag table, bad inputs, and a short real run."""

from tests import test_util

import io
import os
import subprocess
import sys

import tensorflow.compat.v1 as tf

import metarun

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Every flag of the original training program and its default
# (docs/reference/training_and_evaluation.md, sections 1.2-1.4).
ORIGINAL_FLAGS = {
    # metarun.py
    "train_dir": "opt/", "task": 0, "worker_tasks": 1, "num_problems": 1,
    "num_meta_iterations": 5, "num_unroll_scale": 40, "min_num_unrolls": 10,
    "num_partial_unroll_itr_scale": 20, "min_num_itr_partial_unroll": 10,
    "optimizer": "HierarchicalRNN", "cell_size": 20, "num_cells": 2,
    "cell_cls": "GRUCell", "meta_learning_rate": 1e-6,
    "gradient_clip_level": 1e4, "if_cl": False, "fix_unroll": False,
    "fix_unroll_length": 20, "fix_num_steps": 100, "fix_num_steps_eval": 100,
    "evaluation_period": 1, "evaluation_epochs": 20, "save_period": 1,
    "min_lr": 1e-6, "max_lr": 1e-2, "zero_init_lr_weights": True,
    "use_relative_lr": True, "use_extreme_indicator": False,
    "use_log_means_squared": True, "use_problem_lr_mean": True,
    "learnable_decay": True, "dynamic_output_scale": True,
    "use_log_objective": True, "use_attention": False,
    "use_second_derivatives": True, "num_gradient_scales": 4,
    "max_log_lr": 33, "objective_training_max_multiplier": -1,
    "use_gradient_shortcut": True, "use_lr_shortcut": False,
    "use_grad_products": True, "use_multiple_scale_decays": False,
    "use_numerator_epsilon": False, "learnable_inp_decay": True,
    "learnable_rnn_init": True,
    # metaopt.py
    "mini_batch_size": 10000, "ps_tasks": 0, "nan_l2_reg": 1e-2,
    "l2_reg": 0., "rms_decay": 0.9, "rms_epsilon": 1e-20,
    "set_profiling": False, "data_freeze": False, "reset_rnn_params": True,
    "regularize_time": "posterior", "reg_scale": 0.5, "if_mt": False,
    "mt_ratio": 0.1, "mt_k": 1,
    # optimizer/trainable_optimizer.py
    "alpha": 5e-4, "beta": 1e-4, "reg_optimizer": False,
    "reg_optimizee": False,
    # optimizer/hierarchical_rnn.py, coordinatewise_rnn.py
    "biasgrucell_scale": 0.5, "biasgrucell_gate_bias_init": 2.2,
    "hrnn_rnn_readout_scale": 0.5, "hrnn_default_decay_var_init": 2.2,
    "scale_decay_bias_init": 3.2, "learning_rate_momentum_logit_init": 3.2,
    "hrnn_affine_scale": 0.5, "crnn_rnn_readout_scale": 0.5,
    "crnn_default_decay_var_init": 2.2,
    # problems/problem_generator.py
    "hessian_itrs": 10, "reg_option": "hessian", "l2_reg_scale": 1e-3,
}
INCLUDE_FLAGS = [
    "sparse_softmax", "mnist_conv", "cifar10_conv", "mnist_mlp",
    "one_hot_sparse_softmax", "quadratic", "noisy_quadratic",
    "large_quadratic", "bowl", "noisy_bowl", "softmax_2_class",
    "noisy_softmax_2_class", "optimization_test", "noisy_optimization_test",
    "fully_connected_random_2_class", "matmul", "log_objective", "rescale",
    "norm", "noisy_norm", "sum", "noisy_sum", "sparse_gradient",
    "min_max_well", "sum_of_quadratics", "projection_quadratic",
    "outward_snake", "dependency_chain", "lasso", "rastrigin",
]


def _defaults(**overrides):
  values = {name: metarun.FLAGS[name].default for name in metarun.FLAGS}
  values.update(overrides)
  return values


class FlagTableTest(tf.test.TestCase):

  def test_every_original_flag_has_its_default(self):
    for name, default in ORIGINAL_FLAGS.items():
      self.assertIn(name, metarun.FLAGS, name)
      self.assertEqual(metarun.FLAGS[name].default, default, name)
    for stem in INCLUDE_FLAGS:
      name = "include_%s_problems" % stem
      self.assertIn(name, metarun.FLAGS, name)
      self.assertFalse(metarun.FLAGS[name].default)
    self.assertLen(ORIGINAL_FLAGS, 75)

  def test_cluster_flags_default_to_a_single_process(self):
    for name, default in (("ps_hosts", ""), ("worker_hosts", ""),
                          ("job_name", None), ("cluster_wait_secs", 600)):
      self.assertEqual(metarun.FLAGS[name].default, default, name)

  def test_flag_defaults_build_the_checkpoint_configuration(self):
    spec = metarun.optimizer_spec(_defaults())
    self.assertEqual(spec.args, ([10, 20, 20],))
    self.assertTrue(spec.kwargs["use_problem_lr_mean"])
    self.assertTrue(spec.kwargs["use_gradient_shortcut"])
    self.assertTrue(spec.kwargs["use_grad_products"])
    self.assertEqual(spec.kwargs["init_lr_range"], (1e-6, 1e-2))
    self.assertEqual(metarun.log_directory(_defaults(train_dir="x")),
                     os.path.join("x", "HierarchicalRNN_GRUCell_20_2"))

  def test_every_registered_optimizer_builds_from_the_flags(self):
    for name in ("CoordinatewiseRNN", "GlobalLearningRate",
                 "LearningRateSchedule", "TrainableAdam", "HierarchicalRNN"):
      with tf.Graph().as_default():
        metarun.optimizer_spec(_defaults(optimizer=name,
                                         cell_cls="LSTMCell")).build()

  def test_no_include_flag_selects_the_default_synthetic_set(self):
    self.assertEqual(metarun.selected_problem_sets(_defaults()),
                     list(metarun.DEFAULT_PROBLEM_SETS))
    self.assertEqual(
        metarun.selected_problem_sets(_defaults(
            include_lasso_problems=True, include_bowl_problems=True)),
        ["bowl", "lasso"])


class BadInputTest(tf.test.TestCase):

  def _error(self, **overrides):
    with self.assertRaises(metarun.FlagError) as context:
      metarun.validate_flags(_defaults(**overrides))
    message = str(context.exception)
    self.assertNotIn("\n", message)
    return message

  def test_bad_values_name_their_flag(self):
    self.assertIn("--optimizer=Nope", self._error(optimizer="Nope"))
    self.assertIn("--cell_cls=Nope", self._error(cell_cls="Nope"))
    self.assertIn("--num_meta_iterations", self._error(num_meta_iterations=0))
    self.assertIn("--evaluation_epochs", self._error(evaluation_epochs=-1))
    self.assertIn("--fix_unroll_length=200",
                  self._error(fix_unroll_length=200))
    self.assertIn("--min_lr", self._error(min_lr=1.0, max_lr=0.1))
    self.assertIn("--mt_k=0", self._error(mt_k=0))
    self.assertIn("--meta_objective_split=test",
                  self._error(meta_objective_split="test"))
    self.assertIn("--curriculum_stages=12",
                  self._error(curriculum_stages=12))
    self.assertIn("the default synthetic set",
                  self._error(meta_objective_split="validation"))
    self.assertIn("--include_quadratic_problems has none", self._error(
        meta_objective_split="validation", include_quadratic_problems=True,
        include_mnist_mlp_problems=True))
    metarun.validate_flags(_defaults(meta_objective_split="validation",
                                     include_mnist_mlp_problems=True))
    self.assertIn("--mt_ratio=2", self._error(mt_ratio=2.0))
    self.assertIn("--gradient_estimator=nope: unknown estimator; expected "
                  "one of truncated_backprop, es, pes",
                  self._error(gradient_estimator="nope"))
    self.assertIn("--fix_unroll_length=120",
                  self._error(if_cl=True, fix_unroll_length=120,
                              fix_num_steps=200, fix_num_steps_eval=200))

  def test_float_flags_must_be_finite_and_in_their_range(self):
    # A NaN --meta_learning_rate turned every later checkpoint into NaN.
    nan, inf = float("nan"), float("inf")
    for name, value, message in (
        ("meta_learning_rate", nan, "--meta_learning_rate=nan: must be a "
         "finite number"),
        ("meta_learning_rate", inf, "--meta_learning_rate=inf: must be a "
         "finite number"),
        ("meta_learning_rate", -1e-3, "--meta_learning_rate=-0.001: must be "
         "positive"),
        ("meta_learning_rate", 0., "--meta_learning_rate=0.0: must be "
         "positive"),
        ("gradient_clip_level", -1., "--gradient_clip_level=-1.0: must be "
         "positive"),
        ("rms_epsilon", 0., "--rms_epsilon=0.0: must be positive"),
        ("rms_decay", 1.5, "--rms_decay=1.5: must lie in [0, 1)"),
        ("rms_decay", nan, "--rms_decay=nan: must be a finite number"),
        ("l2_reg", -1., "--l2_reg=-1.0: must not be negative"),
        ("alpha", -1e-4, "--alpha=-0.0001: must not be negative"),
        ("beta", inf, "--beta=inf: must be a finite number"),
        ("mt_ratio", nan, "--mt_ratio=nan: must be a finite number"),
        ("reg_scale", -inf, "--reg_scale=-inf: must be a finite number"),
        ("objective_training_max_multiplier", nan,
         "--objective_training_max_multiplier=nan: must be a finite number"),
        ("nan_l2_reg", nan, "--nan_l2_reg=nan: must be a finite number"),
        ("min_lr", nan, "--min_lr=nan: must be a finite number"),
        ("max_lr", inf, "--max_lr=inf: must be a finite number"),
        ("min_lr", -1e-6, "--min_lr=-1e-06: must be positive"),
        ("max_log_lr", nan, "--max_log_lr=nan: must be a finite number"),
        ("hrnn_affine_scale", inf,
         "--hrnn_affine_scale=inf: must be a finite number")):
      self.assertEqual(self._error(**{name: value}), message)
    metarun.validate_flags(_defaults(rms_decay=0., l2_reg=0., alpha=0.,
                                     objective_training_max_multiplier=2.))

  def test_meta_optimizer_flags_are_checked(self):
    self.assertEqual(self._error(meta_optimizer="sgd"),
                     "--meta_optimizer=sgd: expected rmsprop or adam")
    self.assertEqual(self._error(meta_adam_beta2=1.),
                     "--meta_adam_beta2=1.0: must lie in [0, 1)")
    self.assertEqual(self._error(meta_adam_epsilon=0.),
                     "--meta_adam_epsilon=0.0: must be positive")
    self.assertEqual(self._error(gradient_clip_norm=-1.),
                     "--gradient_clip_norm=-1.0: must not be negative")
    self.assertEqual(self._error(meta_learning_rate_warmup=-2),
                     "--meta_learning_rate_warmup=-2: must not be negative")
    self.assertEqual(self._error(meta_learning_rate_schedule="step"),
                     "--meta_learning_rate_schedule=step: expected constant "
                     "or cosine")
    self.assertIn("needs --meta_learning_rate_decay_steps > 0",
                  self._error(meta_learning_rate_schedule="cosine"))
    self.assertIn("--meta_loss_ceiling=0.5: must exceed 1",
                  self._error(meta_loss_ceiling=0.5))
    self.assertEqual(
        self._error(meta_parameter_groups=["update_readout", "nope"]),
        "--meta_parameter_groups=update_readout,nope: HierarchicalRNN has "
        "no group nope; its groups: rnn_initial_states, level0_rnn, "
        "level1_rnn, level2_rnn, update_readout, learning_rate_readout, "
        "decay_readouts")
    metarun.validate_flags(_defaults(
        meta_optimizer="adam", meta_learning_rate_schedule="cosine",
        meta_learning_rate_decay_steps=100, meta_loss_ceiling=1.5,
        meta_parameter_groups=["update_readout"]))

  def test_evolution_strategies_flags_are_checked(self):
    self.assertEqual(self._error(gradient_estimator="es", es_pairs=0),
                     "--es_pairs=0: must be positive")
    self.assertEqual(self._error(gradient_estimator="es", es_sigma=0.),
                     "--es_sigma=0.0: must be positive")
    self.assertEqual(self._error(gradient_estimator="es", es_sigma=-0.1),
                     "--es_sigma=-0.1: must be positive")
    self.assertEqual(self._error(gradient_estimator="es",
                                 es_sigma=float("nan")),
                     "--es_sigma=nan: must be a finite number")
    self.assertEqual(self._error(gradient_estimator="es", if_mt=True),
                     "--gradient_estimator=es has no imitation objective: "
                     "--if_mt needs --gradient_estimator=truncated_backprop")
    metarun.validate_flags(_defaults(gradient_estimator="es", es_pairs=1,
                                     es_sigma=1e-3))
    self.assertEqual(self._error(gradient_estimator="pes", if_mt=True),
                     "--gradient_estimator=pes has no imitation objective: "
                     "--if_mt needs --gradient_estimator=truncated_backprop")
    self.assertEqual(self._error(gradient_estimator="pes", es_pairs=0),
                     "--es_pairs=0: must be positive")
    metarun.validate_flags(_defaults(gradient_estimator="pes", es_pairs=2,
                                     es_sigma=1e-3))

  def test_task_batch_and_horizon_flags_are_checked(self):
    self.assertEqual(self._error(task_batch_size=0),
                     "--task_batch_size=0: must be positive")
    self.assertEqual(self._error(horizon_sampling=True, min_horizon=0),
                     "--min_horizon=0: must be positive")
    self.assertEqual(self._error(horizon_sampling=True, min_horizon=200,
                                 max_horizon=100),
                     "--min_horizon=200 exceeds --max_horizon=100")
    self.assertEqual(self._error(horizon_sampling=True, if_cl=True),
                     "--if_cl: horizon sampling (--horizon_sampling) has its "
                     "own trajectories; it runs without the curriculum and "
                     "without imitation")
    self.assertIn("--if_mt: horizon sampling", self._error(
        horizon_sampling=True, if_mt=True))
    metarun.validate_flags(_defaults(task_batch_size=4, horizon_sampling=True,
                                     min_horizon=20, max_horizon=20))

  def test_run_wide_values_are_checked(self):
    self.assertIn("--train_dir is empty", self._error(train_dir=""))
    self.assertIn("--seed=-1: expected an integer in [0, 2^31)",
                  self._error(seed=-1))
    self.assertIn("--evaluation_period=6 exceeds --num_meta_iterations=5",
                  self._error(evaluation_period=6))
    metarun.validate_flags(_defaults(seed=0))

  def test_later_features_are_rejected_until_implemented(self):
    self.assertIn("--set_profiling=", self._error(set_profiling=True))

  def test_cluster_flags_are_checked(self):
    # Parameter servers need the cluster's hosts (docs/distributed.md).
    self.assertIn("--ps_tasks=2: parameter servers need a cluster",
                  self._error(ps_tasks=2))
    self.assertIn("--job_name: required", self._error(ps_hosts="h:1"))
    self.assertIn("--worker_tasks=1 does not match --worker_hosts",
                  self._error(job_name="worker", ps_hosts="h:1",
                              worker_hosts="h:2,h:3", ps_tasks=1))
    self.assertIsNone(metarun.cluster_config(_defaults()))
    config = metarun.cluster_config(_defaults(
        job_name="ps", ps_hosts="h:1", worker_hosts="h:2,h:3", ps_tasks=1,
        worker_tasks=2))
    self.assertEqual(config.device, "/job:ps/task:0")

  def test_regulariser_flags_are_checked(self):
    self.assertIn("--reg_option=hessian-typo",
                  self._error(reg_option="hessian-typo"))
    self.assertIn("--hessian_itrs", self._error(hessian_itrs=0))
    metarun.validate_flags(_defaults(reg_optimizer=True, alpha=1e-4,
                                     regularize_time="none",
                                     reg_option="hessian-esd"))

  def test_regulariser_settings_follow_the_flags(self):
    out = io.StringIO()
    self.assertEqual(metarun.regularizer_settings(_defaults(), out), {})
    settings = metarun.regularizer_settings(
        _defaults(reg_optimizer=True, alpha=1e-4, regularize_time="always"),
        out)
    self.assertEqual(settings["meta_regularizer_weight"], 1e-4)
    self.assertIsNone(settings["optimizee_regularizer_weight"])
    self.assertTrue(callable(settings["regularizer_fn"]))
    self.assertEqual(out.getvalue(), "")
    # A term --regularize_time=none never switches on is not built.
    self.assertEqual(metarun.regularizer_settings(
        _defaults(reg_optimizer=True, alpha=1e-4, regularize_time="none"),
        out), {})
    self.assertIn("--regularize_time=none adds nothing", out.getvalue())
    self.assertEqual(len(out.getvalue().strip().splitlines()), 1)
    settings = metarun.regularizer_settings(
        _defaults(reg_optimizer=True, reg_optimizee=True, beta=0.5,
                  regularize_time="none"), io.StringIO())
    self.assertIsNone(settings["meta_regularizer_weight"])
    self.assertEqual(settings["optimizee_regularizer_weight"], 0.5)
    settings = metarun.regularizer_settings(
        _defaults(reg_optimizee=True, beta=0.5), io.StringIO())
    self.assertIsNone(settings["meta_regularizer_weight"])
    self.assertEqual(settings["optimizee_regularizer_weight"], 0.5)

  def test_unwritable_train_dir_is_reported(self):
    blocker = os.path.join(self.get_temp_dir(), "a_file")
    with open(blocker, "w") as f:
      f.write("x")
    with self.assertRaisesRegex(metarun.FlagError, "--train_dir"):
      metarun.check_writable(os.path.join(blocker, "sub"))

  def test_failed_start_leaves_existing_checkpoints_alone(self):
    train_dir = os.path.join(self.get_temp_dir(), "keep")
    logdir = metarun.log_directory(_defaults(train_dir=train_dir))
    os.makedirs(logdir)
    checkpoint = os.path.join(logdir, "checkpoint")
    with open(checkpoint, "w") as f:
      f.write("model_checkpoint_path: \"model.ckpt-7\"\n")
    result = subprocess.run(
        [sys.executable, "metarun.py", "--train_dir=" + train_dir,
         "--fix_unroll_length=500"], cwd=_ROOT, capture_output=True,
        text=True, timeout=300, env=dict(os.environ, PYTHONPATH=_ROOT))
    self.assertEqual(result.returncode, 1)
    self.assertEqual(result.stderr.strip().splitlines()[-1],
                     "metarun.py: --fix_unroll_length=500 exceeds "
                     "--fix_num_steps=100: a run needs at least one whole "
                     "unroll")
    self.assertEqual(sorted(os.listdir(logdir)), ["checkpoint"])
    with open(checkpoint) as f:
      self.assertEqual(f.read(), "model_checkpoint_path: \"model.ckpt-7\"\n")


class RunTest(tf.test.TestCase):

  def test_short_run_on_the_default_set_writes_checkpoints(self):
    train_dir = os.path.join(self.get_temp_dir(), "short")
    result = subprocess.run(
        [sys.executable, "metarun.py", "--train_dir=" + train_dir,
         "--optimizer=GlobalLearningRate", "--fix_unroll=True",
         "--fix_unroll_length=5", "--fix_num_steps=10",
         "--fix_num_steps_eval=10", "--num_meta_iterations=2",
         "--evaluation_epochs=1", "--seed=3"],
        cwd=_ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=_ROOT))
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    logdir = os.path.join(train_dir, "GlobalLearningRate_GRUCell_20_2")
    names = set(os.listdir(logdir))
    for k in (0, 1, 2):
      self.assertIn("model.ckpt-%d.index" % k, names)
    events = [os.path.join(logdir, n) for n in names
              if n.startswith("events.out.tfevents")]
    tags = {value.tag for path in events
            for event in tf.train.summary_iterator(path)
            for value in event.summary.value}
    self.assertTrue({"MetaObjective", "Quadratic_MetaObjective",
                     "Evaluation"} & tags >= {"MetaObjective", "Evaluation"})
    self.assertIn("meta-iteration 2/2", result.stdout)
    self.assertIn("model.ckpt-0", result.stdout.splitlines()[-1])


if __name__ == "__main__":
  tf.test.main()
