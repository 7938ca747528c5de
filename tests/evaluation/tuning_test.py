"""Tests of evaluation.tuning: grids and the choice of a grid point."""

from tests import test_util

import math

import tensorflow.compat.v1 as tf

from evaluation import tuning


def _seed(last100=None, validation=None, finite=True):
  entry = {"final_loss_last100": last100, "finite": finite}
  if validation is not None or last100 is None:
    entry["heldout"] = {"validation_loss": validation}
  return entry


class GridTest(test_util.TestCase):

  def test_learning_rates_parse_in_order_and_a_single_value_is_one_point(self):
    points = tuning.parse_learning_rates(["1e-3", "0.0001", "1e-2"], "lr")
    self.assertEqual([p.low for p in points], [1e-3, 1e-4, 1e-2])
    self.assertEqual([p.label for p in points], ["0.001", "0.0001", "0.01"])
    self.assertLen(tuning.parse_learning_rates(["3e-3"], "lr"), 1)

  def test_bad_learning_rates_name_the_flag(self):
    for texts in (["-1"], ["abc"], ["0"], ["inf"], [], ["1e-3", "0.001"]):
      with self.assertRaisesRegex(ValueError, "^--adam_learning_rate: "):
        tuning.parse_learning_rates(texts, "adam_learning_rate")

  def test_initial_learning_rates_keep_the_original_range_first(self):
    points = tuning.parse_initial_learning_rates(
        ["1e-3", "1e-5:1e-3", "1e-6:1e-2"], "init_lr_grid", (1e-6, 1e-2))
    self.assertEqual([(p.low, p.high) for p in points],
                     [(1e-6, 1e-2), (1e-3, 1e-3), (1e-5, 1e-3)])
    self.assertTrue(points[0].is_range)
    self.assertFalse(points[1].is_range)
    self.assertEqual(points[0].label, "1e-06:0.01")
    self.assertAlmostEqual(points[0].value, 1e-4)

  def test_malformed_initial_learning_rates_name_the_flag(self):
    for text in ("1e-2:1e-3", "1:2:3", "x", "1e-3:"):
      with self.assertRaisesRegex(ValueError, "^--init_lr_grid: "):
        tuning.parse_initial_learning_rates([text], "init_lr_grid",
                                            (1e-6, 1e-2))

  def test_default_learned_grid_has_the_requested_size(self):
    points = tuning.default_initial_learning_rates((1e-6, 1e-2), 5)
    self.assertLen(points, 5)
    self.assertEqual((points[0].low, points[0].high), (1e-6, 1e-2))
    self.assertLen(set(points), 5)
    self.assertLen(tuning.default_initial_learning_rates((1e-6, 1e-2), 1), 1)


class SelectTest(test_util.TestCase):

  def setUp(self):
    super().setUp()
    self.points = tuning.parse_learning_rates(
        ["1e-4", "1e-3", "1e-2", "1e-1"], "lr")

  def test_lowest_mean_training_loss_wins_and_divergence_is_never_chosen(self):
    per_point = [
        [_seed(0.5), _seed(0.7)],                 # mean 0.6
        [_seed(0.1), _seed(0.3)],                 # mean 0.2: the best
        [_seed(0.01), _seed(float("nan"))],       # diverged on one seed
        [_seed(0.001, finite=False), _seed(0.001)],  # NaN during the run
    ]
    choice = tuning.select(self.points, per_point, has_validation=False)
    self.assertEqual(choice.chosen, 1)
    self.assertEqual(choice.rule, tuning.RULE_TRAINING)
    self.assertAlmostEqual(choice.scores[0], 0.6)
    self.assertAlmostEqual(choice.scores[1], 0.2)
    self.assertIsNone(choice.scores[2])
    self.assertIsNone(choice.scores[3])
    self.assertFalse(choice.at_edge)
    self.assertIsNone(tuning.edge_warning("Adam", "p", self.points, choice,
                                          "adam_learning_rate"))

  def test_validation_loss_decides_where_there_is_a_validation_split(self):
    per_point = [[_seed(0.9, validation=0.3)], [_seed(0.1, validation=0.4)],
                 [_seed(0.5, validation=0.35)], [_seed(0.2, validation=1.)]]
    choice = tuning.select(self.points, per_point, has_validation=True)
    self.assertEqual(choice.chosen, 0)
    self.assertEqual(choice.rule, tuning.RULE_VALIDATION)

  def test_a_tie_goes_to_the_lower_learning_rate(self):
    points = tuning.parse_learning_rates(["1e-2", "1e-3", "1e-1"], "lr")
    per_point = [[_seed(0.25)], [_seed(0.25)], [_seed(0.5)]]
    choice = tuning.select(points, per_point, has_validation=False)
    self.assertEqual(choice.chosen, 1)
    self.assertTrue(choice.at_edge)  # 1e-3 is the lowest of the grid

  def test_a_choice_at_the_edge_warns_and_names_the_flag(self):
    per_point = [[_seed(0.4)], [_seed(0.3)], [_seed(0.2)], [_seed(0.1)]]
    choice = tuning.select(self.points, per_point, has_validation=False)
    self.assertEqual(choice.chosen, 3)
    self.assertTrue(choice.at_edge)
    warning = tuning.edge_warning("Adam", "mnist", self.points, choice,
                                  "adam_learning_rate")
    self.assertIn("0.1 is the highest of its grid", warning)
    self.assertIn("--adam_learning_rate", warning)

  def test_every_point_diverged_chooses_nothing(self):
    per_point = [[_seed(math.inf)]] * 4
    choice = tuning.select(self.points, per_point, has_validation=False)
    self.assertIsNone(choice.chosen)
    self.assertFalse(choice.at_edge)

  def test_a_one_point_grid_is_never_at_the_edge(self):
    choice = tuning.select(self.points[:1], [[_seed(0.3)]],
                           has_validation=False)
    self.assertEqual(choice.chosen, 0)
    self.assertFalse(choice.at_edge)


if __name__ == "__main__":
  tf.test.main()
