"""Tests of evaluation/campaign.py: a campaign run as a library call."""

from tests import test_util

import io
import os
import pickle

import numpy as np
import tensorflow.compat.v1 as tf

from evaluation import baselines
from evaluation import campaign
from evaluation import config
from evaluation import runner
from evaluation import summary
from evaluation import tuning
from problems import problem_sets
from problems import problem_spec


class ProblemsTest(test_util.TestCase):

  def setUp(self):
    super().setUp()
    self.data_dir = self.make_tempdir()
    test_util.write_fake_mnist(os.path.join(self.data_dir, "mnist"),
                               num_train=5010, num_test=30)

  def _problems(self, *stems):
    return campaign.problems(config.Runs(problem_sets=stems,
                                         data_dir=self.data_dir))

  def test_problems_carry_the_registry_s_facts(self):
    conv, mlp, test_split = self._problems(
        "mnist_conv_heldout", "mnist_mlp_heldout", "mnist_mlp_relu")
    self.assertEqual([p.label for p in (conv, mlp, test_split)],
                     ["mnist_conv_heldout", "mnist_mlp_heldout",
                      "mnist_mlp_relu"])
    self.assertEqual([p.conv for p in (conv, mlp, test_split)],
                     [True, False, False])
    self.assertEqual([d.size for d in mlp.splits], [10, 5000, 30])
    self.assertIs(mlp.dataset, mlp.splits.train)
    self.assertIsNone(test_split.splits)
    self.assertEqual(test_split.dataset.size, 30)
    self.assertEqual(test_split.batch_size, 128)

  def test_conv_nets_are_measured_in_smaller_chunks_and_subsets(self):
    conv, mlp = self._problems("mnist_conv_heldout", "mnist_mlp_heldout")
    automatic = config.Measurements()
    metrics_config, curvature = campaign.measurement_options(automatic, conv,
                                                             1000)
    self.assertEqual(metrics_config.every, 20)
    self.assertEqual((metrics_config.subset, metrics_config.chunk_size),
                     (2000, 500))
    self.assertEqual(list(metrics_config.splits),
                     ["train", "validation", "test"])
    self.assertEqual(curvature, {"lanczos_steps": 30, "num_probes": 10,
                                 "max_samples": 2000, "chunk_size": 500})
    metrics_config, curvature = campaign.measurement_options(automatic, mlp,
                                                             1000)
    self.assertEqual((metrics_config.subset, metrics_config.chunk_size),
                     (5000, 10000))
    self.assertIsNone(curvature["max_samples"])
    metrics_config, curvature = campaign.measurement_options(
        config.Measurements(hessian=False, metrics_every=7), mlp, 1000)
    self.assertEqual(metrics_config.every, 7)
    self.assertIsNone(curvature)
    [test_split] = self._problems("mnist_mlp_relu")
    self.assertIsNone(campaign.measurement_options(automatic, test_split,
                                                   1000)[0])

  def test_an_unknown_set_is_a_setting_error(self):
    with self.assertRaisesRegex(config.SettingError,
                                "^unknown problem set nope; known: "):
      self._problems("nope")


class FileNameTest(tf.test.TestCase):

  def test_record_and_metrics_files_have_the_original_s_names(self):
    path = campaign.record_file("out", "m", 6)
    self.assertEqual(path, os.path.join("out",
                                        "seed6_eval_loss_record.pickle-m"))
    self.assertEqual(campaign.metrics_file(path),
                     os.path.join("out", "seed6_metrics-m.json"))
    path = campaign.record_file("out", "m", 12, "bowl_0",
                                tuning.point(1e-6, 1e-2))
    self.assertEqual(os.path.basename(path),
                     "seed12_eval_loss_record.pickle-m-bowl_0-lr1e-06_0.01")
    optimizers = config.Optimizers(test_optimizer="Adam",
                                   compare_with=("SGD",))
    output = config.Output(save_dir="out")
    self.assertEqual(campaign.optimizer_folder(output, optimizers, "Adam"),
                     "out")
    self.assertEqual(campaign.optimizer_folder(output, optimizers, "SGD"),
                     os.path.join("out", "SGD"))


class RunTest(test_util.TestCase):

  def test_a_campaign_without_flags_writes_what_a_direct_run_gives(self):
    save_dir = os.path.join(self.make_tempdir(), "eval")
    settings = config.Campaign(
        optimizers=config.Optimizers(test_optimizer="SGD",
                                     learning_rates={"SGD": ("0.01",)}),
        runs=config.Runs(num_steps=6, seeds=(1, 2), problem_sets=("lasso",)),
        measurements=config.Measurements(hessian=False),
        output=config.Output(save_dir=save_dir, model_name="x", plot=False,
                             command=("by hand",)))
    out = io.StringIO()
    path = campaign.run(settings, out)
    self.assertEqual(path, os.path.join(save_dir, "summary.json"))
    document = summary.read_summary(save_dir)
    self.assertEqual(document["command"], ["by hand"])
    self.assertEqual(document["grids"], {"SGD": ["0.01"]})
    [spec, _, _] = problem_sets.lasso_problems()[0]
    for seed, entry in zip((1, 2), document["results"][0]["per_seed"]):
      direct = runner.test_optimizer(
          baselines.make_baseline("SGD", 0.01),
          problem_spec.Spec(runner.build_with_numpy_seed, (spec, 1000), {}),
          6, seed=seed,
          options=runner.RunOptions(batch_rng=np.random.RandomState(seed)))
      with open(os.path.join(save_dir,
                             "seed%d_eval_loss_record.pickle-x" % seed),
                "rb") as f:
        written = pickle.load(f)
      self.assertEqual(written, direct.objective_values)
      self.assertEqual(entry["final_loss"],
                       float(direct.objective_values[-1]))
      self.assertEqual(entry["file"],
                       "seed%d_eval_loss_record.pickle-x" % seed)
    self.assertIn("[2/2] testing lasso with SGD using seed 2",
                  out.getvalue())
    self.assertIn("summary: " + path, out.getvalue())


if __name__ == "__main__":
  tf.test.main()
