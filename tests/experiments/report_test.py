"""Tests of the study report's statistics: spreads over meta-training and
evaluation seeds, and the differences from the `initial` row."""

from tests import test_util

import numpy as np
import tensorflow.compat.v1 as tf

from experiments import report


def _result(seeds, final, grid_point="1e-3"):
  return {"seeds": list(seeds), "values": {"final_last100": list(final)},
          "grid_point": grid_point, "grid_size": 3, "num_steps": 200,
          "files": [], "diverged": False}


class StatsTest(tf.test.TestCase):

  def test_one_meta_seed_gives_the_spread_over_evaluation_seeds(self):
    stats = report._stats([[1., 2., 4.]])  # pylint: disable=protected-access
    self.assertAllClose(stats["mean"], 7. / 3)
    self.assertAllClose(stats["std"], np.std([1., 2., 4.]))
    self.assertIsNone(stats["std_meta"])
    self.assertEqual(stats["count"], 3)

  def test_meta_seed_and_evaluation_seed_spreads_are_apart(self):
    groups = [[1., 3.], [10., 14.], [4., None]]
    stats = report._stats(groups)  # pylint: disable=protected-access
    self.assertAllClose(stats["mean"], np.mean([1., 3., 10., 14., 4.]))
    self.assertAllClose(stats["std"], np.mean([1., 2., 0.]))
    self.assertAllClose(stats["std_meta"], np.std([2., 12., 4.]))
    self.assertEqual(stats["meta_seeds"], 3)
    self.assertIsNone(report._stats([[None], []]))  # pylint: disable=protected-access

  def test_differences_pair_meta_seed_and_evaluation_seed(self):
    variant = [_result((6, 12), (1.0, 2.0)), _result((6, 12), (5.0, 7.0))]
    # The initial rows list the seeds in another order.
    initial = [_result((12, 6), (2.5, 1.5)), _result((6, 12), (4.0, 4.0))]
    added = report._difference(variant, initial)["final_last100"]  # pylint: disable=protected-access
    differences = [[1.0 - 1.5, 2.0 - 2.5], [5.0 - 4.0, 7.0 - 4.0]]
    self.assertAllClose(added["mean"], np.mean(differences))
    self.assertAllClose(added["std"], np.mean([np.std(d)
                                               for d in differences]))
    self.assertAllClose(added["std_meta"],
                        np.std([np.mean(d) for d in differences]))

  def test_cells_show_both_spreads_and_signs(self):
    one = {"mean": -0.0123, "std": 0.004, "std_meta": None}
    self.assertEqual(report._cell(one, digits=3, signed=True),  # pylint: disable=protected-access
                     "-0.0123 ± 0.004")
    both = {"mean": 0.5, "std": 0.01, "std_meta": 0.2}
    self.assertEqual(report._cell(both),  # pylint: disable=protected-access
                     "0.5 (± 0.2 meta, ± 0.01 eval)")

  def test_rows_of_several_meta_seeds_list_their_chosen_points(self):
    row = report._row("v", [_result((6,), (1.,), "1e-3"),  # pylint: disable=protected-access
                            _result((6,), (3.,), "3e-3")])
    self.assertEqual(row["grid_point"], "1e-3, 3e-3")
    self.assertAllClose(row["final_last100"]["mean"], 2.)
    self.assertAllClose(row["final_last100"]["std_meta"], 1.)


if __name__ == "__main__":
  tf.test.main()
