"""Tests of evaluation.report (comparison.md) and the grid rows of the table."""

from tests import test_util

import os

import tensorflow.compat.v1 as tf

from evaluation import report
from evaluation import summary


def _result(optimizer, point, chosen, losses, heldout=None, lr=None):
  per_seed = [summary.seed_statistics(
      seed, [2., 1.] + [loss] * 99, loss, [0.002], "f",
      heldout=None if heldout is None else dict(
          heldout, validation_loss=heldout["test_loss"]))
              for seed, loss in zip((6, 12), losses)]
  return {"optimizer": optimizer, "problem": "p", "grid_point": point,
          "chosen": chosen, "learning_rate": lr,
          "initial_learning_rates": None if lr else [1e-6, 1e-2],
          "per_seed": per_seed}


def _document(folder):
  results = [
      _result("L2o", "1e-06:0.01", True, [0.5, 0.7],
              {"test_loss": 0.6, "test_accuracy": 0.8}),
      _result("Adam", "0.001", False, [0.4, 0.4],
              {"test_loss": 0.5, "test_accuracy": 0.82}, lr=1e-3),
      _result("Adam", "0.01", True, [0.1, 0.3],
              {"test_loss": 0.45, "test_accuracy": 0.85}, lr=1e-2),
  ]
  selection = [
      {"problem": "p", "optimizer": "L2o", "rule": "r", "grid":
       ["1e-06:0.01"], "scores": [0.6], "diverged": [],
       "chosen": "1e-06:0.01", "at_edge": False},
      {"problem": "p", "optimizer": "Adam", "rule": "r",
       "grid": ["0.001", "0.01", "0.1"], "scores": [0.4, 0.2, None],
       "diverged": ["0.1"], "chosen": "0.01", "at_edge": False}]
  summary.write_summary(folder, {"model_name": "m", "num_testing_itrs": 101,
                                 "seeds": [6, 12], "command": ["metatest.py"],
                                 "seed_batch_order": True},
                        results, selection)
  return summary.read_summary(folder)


class ComparisonTest(test_util.TestCase):

  def test_one_row_per_optimizer_at_its_chosen_point(self):
    folder = self.make_tempdir()
    path = report.write_comparison(folder, _document(folder))
    self.assertEqual(path, os.path.join(folder, "comparison.md"))
    with open(path) as f:
      text = f.read()
    rows = [line for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| ---")]
    self.assertLen(rows, 3)  # header, L2o, Adam
    self.assertIn("train loss @100", rows[0])
    self.assertIn("train loss @101", rows[0])
    self.assertRegex(rows[1], r"^\| L2o +\| initial lr 1e-06:0.01 ")
    self.assertRegex(rows[2], r"^\| Adam +\| lr 0.01 ")
    self.assertIn("0.2 ± 0.1", rows[2])      # final mini-batch loss
    self.assertIn("0.45 ", rows[2])          # test loss, equal over seeds
    self.assertIn("0.001: 0.4, **0.01: 0.2**, 0.1: diverged", rows[2])
    self.assertIn("Grids differ in size (Adam 3, L2o 1)", text)

  def test_the_summary_table_marks_the_chosen_point_of_a_grid(self):
    folder = self.make_tempdir()
    lines = summary.table(_document(folder)["results"]).splitlines()
    self.assertLen(lines, 5)
    self.assertIn("test accuracy", lines[0])
    self.assertRegex(lines[2], r"\| L2o +\| 1e-06:0.01 +\|")  # one point
    self.assertRegex(lines[3], r"\| Adam +\| 0.001 +\|")
    self.assertRegex(lines[4], r"\| Adam +\| 0.01 \* +\|")


if __name__ == "__main__":
  tf.test.main()
