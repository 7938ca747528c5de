"""Tests of bench/versus_base.py: alternating runs and their ratios."""

import os
import tempfile
import unittest

from bench import versus_base


class VersusBaseTest(unittest.TestCase):

  def test_leaves_are_numbers_by_path(self):
    self.assertEqual(versus_base.numeric_leaves(
        {"a": {"ms": 2, "ok": True, "name": "x"}, "b": [1.5, {"c": 3}]}),
        {"a/ms": 2., "b/0": 1.5, "b/1/c": 3.})

  def test_ratios_are_taken_round_by_round(self):
    base = [{"t": 2., "u": 1.}, {"t": 4., "u": 0.}]
    new = [{"t": 1., "u": 1.}, {"t": 4., "u": 5.}]
    self.assertEqual(versus_base.ratios(base, new), {"t": [.5, 1.],
                                                     "u": [1.]})
    self.assertEqual(versus_base.ratios(base, new, ["u"]), {"u": [1.]})

  def test_rounds_alternate_and_read_each_trees_json(self):
    with tempfile.TemporaryDirectory() as base, \
        tempfile.TemporaryDirectory() as new:
      for tree, value in ((base, 4.), (new, 3.)):
        with open(os.path.join(tree, "fake.py"), "w") as f:
          f.write("import json, os\nprint('noise')\n"
                  "print(json.dumps({'ms': %r, 'cwd': os.getcwd()}))\n"
                  % value)
      base_runs, new_runs = versus_base.alternate(base, new, ["fake.py"], 2)
      self.assertEqual(base_runs, [{"json0/ms": 4.}] * 2)
      self.assertEqual(new_runs, [{"json0/ms": 3.}] * 2)
      self.assertEqual(versus_base.ratios(base_runs, new_runs),
                       {"json0/ms": [.75, .75]})
      with open(os.path.join(new, "fake.py"), "w") as f:
        f.write("raise SystemExit(3)\n")
      with self.assertRaisesRegex(RuntimeError, "fake.py in .* failed"):
        versus_base.alternate(base, new, ["fake.py"], 1)


if __name__ == "__main__":
  unittest.main()
