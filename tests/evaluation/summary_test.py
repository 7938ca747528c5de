"""Tests of evaluation.summary and evaluation.plot."""

from tests import test_util

import json
import os
import pickle

import numpy as np
import tensorflow.compat.v1 as tf

from evaluation import plot
from evaluation import summary


class SummaryTest(test_util.TestCase):

  def test_loss_steps_are_powers_of_ten_and_the_last(self):
    self.assertEqual(summary.loss_steps(10000), [1, 10, 100, 1000, 10000])
    self.assertEqual(summary.loss_steps(300), [1, 10, 100, 300])
    self.assertEqual(summary.loss_steps(1), [1])

  def test_seed_statistics_of_a_known_sequence(self):
    losses = np.linspace(2., 0.01, 250)
    losses[120] = 0.001
    stats = summary.seed_statistics(6, losses, 0.5, [0.1, 0.3, 0.2], "f")
    self.assertEqual(stats["seed"], 6)
    self.assertEqual(stats["num_steps"], 250)
    self.assertAlmostEqual(stats["final_loss"], 0.01)
    self.assertAlmostEqual(stats["final_loss_last100"],
                           np.mean(losses[-100:]))
    self.assertAlmostEqual(stats["best_loss"], 0.001)
    self.assertEqual(stats["best_step"], 121)
    self.assertEqual(stats["loss_at"], {"1": 2., "10": losses[9],
                                        "100": losses[99], "250": 0.01})
    self.assertAlmostEqual(stats["seconds_per_step"], 0.2)
    self.assertAlmostEqual(stats["seconds_total"], 0.6)
    self.assertTrue(stats["finite"])

  def test_non_finite_losses_become_null_and_are_not_best(self):
    stats = summary.seed_statistics(1, [3., 1., np.nan, np.inf], np.nan,
                                    [0.1], "f")
    self.assertIsNone(stats["final_loss"])
    self.assertIsNone(stats["final_full_loss"])
    self.assertEqual(stats["best_loss"], 1.)
    self.assertFalse(stats["finite"])

  def test_aggregate_over_seeds_skips_nulls(self):
    per_seed = [summary.seed_statistics(s, [3., v], v, [0.1], "f")
                for s, v in ((1, 1.), (2, 3.), (3, np.nan))]
    stats = summary.aggregate(per_seed)
    self.assertEqual(stats["final_loss"],
                     {"mean": 2., "std": 1., "median": 2., "min": 1.,
                      "max": 3., "count": 2})
    self.assertEqual(stats["loss_at/1"]["mean"], 3.)

  def test_files_round_trip(self):
    folder = self.make_tempdir()
    path = os.path.join(folder, "seed6_eval_loss_record.pickle-x")
    summary.write_loss_record(path, [1.5, 0.5])
    with open(path, "rb") as f:
      record = pickle.load(f)
    self.assertEqual(record, [1.5, 0.5])
    self.assertIsInstance(record[0], np.float32)
    per_seed = [summary.seed_statistics(6, [1.5, 0.5], 0.4, [0.1],
                                        os.path.basename(path))]
    written = summary.write_summary(
        folder, {"model_name": "x"},
        [{"optimizer": "Adam", "problem": "p", "per_seed": per_seed}])
    with open(written) as f:
      document = json.load(f)
    self.assertEqual(document["format"], summary.FORMAT_VERSION)
    self.assertEqual(document["model_name"], "x")
    self.assertEqual(document["results"][0]["aggregate"]["final_loss"]["mean"],
                     0.5)
    self.assertEqual(summary.read_summary(folder), document)
    self.assertEqual(sorted(os.listdir(folder)),
                     ["seed6_eval_loss_record.pickle-x", "summary.json"])

  def test_a_failed_write_leaves_the_old_file_and_no_temporary(self):
    folder = self.make_tempdir()
    path = os.path.join(folder, "summary.json")
    summary.write_json(path, {"format": 2})
    with open(path, "rb") as f:
      before = f.read()
    with self.assertRaises(ValueError):  # JSON holds no NaN.
      summary.write_json(path, {"format": 2, "loss": float("nan")})
    with self.assertRaises((AttributeError, pickle.PicklingError)):
      summary.write_pickle(os.path.join(folder, "record"), lambda: None)
    with open(path, "rb") as f:
      self.assertEqual(f.read(), before)
    self.assertEqual(os.listdir(folder), ["summary.json"])

  def test_the_written_summary_is_the_made_document(self):
    folder = self.make_tempdir()
    args = ({"model_name": "x"},
            [{"optimizer": "SGD", "problem": "p",
              "per_seed": [summary.seed_statistics(1, [2., 1.], 1., [0.1],
                                                   "f")]}])
    summary.write_summary(folder, *args)
    self.assertEqual(summary.read_summary(folder),
                     json.loads(summary.json_text(summary.make_summary(*args))))
    self.assertEqual(summary.summary_path(folder),
                     os.path.join(folder, "summary.json"))

  def test_table_has_a_row_per_result(self):
    results = [{"optimizer": name, "problem": "mnist",
                "per_seed": [summary.seed_statistics(6, [2., loss], loss,
                                                     [0.002], "f")]}
               for name, loss in (("L2o", 0.25), ("Adam", 0.5))]
    lines = summary.table(results).splitlines()
    self.assertLen(lines, 4)
    self.assertIn("loss @2", lines[0])
    self.assertIn("| L2o ", lines[2])
    self.assertIn("0.25 ± 0", lines[2])
    self.assertIn("2 ± 0", lines[3])  # ms/step


class PlotTest(test_util.TestCase):

  def test_smoothing_is_a_trailing_mean(self):
    values = np.array([4., 2., 6., 8., 0.])
    self.assertAllClose(plot.smooth(values, 2), [4., 3., 4., 7., 4.])
    self.assertAllClose(plot.smooth(values, 1), values)

  def test_writes_a_png_when_matplotlib_is_installed(self):
    path = os.path.join(self.make_tempdir(), "curves.png")
    curves = {"p": {"L2o": [np.linspace(2, .1, 50), np.linspace(2, .2, 50)],
                    "Adam": [np.linspace(2, .5, 50)] * 2}}
    written = plot.plot_loss_curves(path, curves, title="t")
    if not plot.available():
      self.assertIsNone(written)
      self.assertFalse(os.path.exists(path))
      return
    self.assertEqual(written, path)
    with open(path, "rb") as f:
      self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
    # Written whole through a temporary file, which is gone.
    self.assertEqual(os.listdir(os.path.dirname(path)), ["curves.png"])


if __name__ == "__main__":
  tf.test.main()
