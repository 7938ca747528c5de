"""The recipe plan's quick form end to end (study.py --plan=recipe --quick).

Two meta-training seeds of the recipe on the meta-training net (`mnist_mlp`,
small fake data), each run's checkpoint selected, evaluated against its own
start, the report's numbers recomputed from the runs' own files.
"""

from tests import test_util

import io
import json
import os
import pickle
import shutil
import tempfile

import numpy as np
import tensorflow.compat.v1 as tf

from evaluation import plot
from experiments import plan
from experiments import report
from experiments import study
from tests.experiments.study_test import _values


class RecipeStudyTest(tf.test.TestCase):
  """The recipe plan's quick form: two meta-training seeds of the recipe on
  the meta-training net, its per-meta-seed comparison with its own start and
  its meta-training figure, every number recomputed from the runs' files."""

  def test_quick_recipe(self):
    root = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, root)
    data_dir = os.path.join(root, "data")
    test_util.write_fake_mnist(os.path.join(data_dir, "mnist"),
                               num_train=5300, num_test=300, seed=1)
    study_dir = os.path.join(root, "study")
    # The Hessian variant differs by one flag (plan_test), and study_test's
    # quick study trains with the Hessian term.
    values = _values(study_dir, data_dir, plan="recipe", variants=["recipe"],
                     evaluation_sets=["mnist_mlp"], meta_seeds=["1", "2"])
    path = study.run(values, explicit={"variants", "evaluation_sets",
                                       "meta_seeds"},
                     out=io.StringIO(), command=["study.py", "--plan=recipe"])
    with open(path) as f:
      text = f.read()
    with open(os.path.join(study_dir, report.REPORT_JSON)) as f:
      content = json.load(f)
    self.assertIn("# Recipe:", text)
    self.assertIn("--reset_rnn_params=False", text)
    self.assertEqual([(e["variant"], e["meta_seed"])
                      for e in content["training"]],
                     [("recipe", 1), ("recipe", 2)])
    [evaluation_set] = content["sets"]
    self.assertEqual(evaluation_set["name"], "mnist_mlp")
    rows = {row["name"]: row for row in evaluation_set["rows"]}
    steps = plan.RECIPE_QUICK.mlp_steps
    for row in rows.values():
      losses = [_record(study_dir, name) for name in row["files"]]
      self.assertLen(losses, 2 * (2 if row["meta_seeds"] == 2 else 1))
      self.assertAllClose(row["loss@100"]["mean"],
                          np.mean([l[99] for l in losses]), rtol=1e-6)
      self.assertNotIn("loss@1000", row)  # beyond the runs' 120 steps
      self.assertLen(losses[0], steps)
    # Against its own start, per meta-training seed, paired by seed.
    by_seed = rows["recipe"]["vs_initial_by_meta_seed"]
    self.assertEqual([e["meta_seed"] for e in by_seed], [1, 2])
    mine = [_record(study_dir, n) for n in rows["recipe"]["files"]]
    start = [_record(study_dir, n) for n in rows[plan.INITIAL]["files"]]
    for k, entry in enumerate(by_seed):
      differences = [np.mean(a[-100:]) - np.mean(b[-100:])
                     for a, b in zip(mine[2 * k:2 * k + 2],
                                     start[2 * k:2 * k + 2])]
      self.assertAllClose(entry["final_last100"]["mean"],
                          np.mean(differences), rtol=1e-6)
    self.assertIn("| variant − its start | meta-seed |", text)
    self.assertIn("| recipe | 2 |", text)
    # The meta-training curves, when matplotlib is there.
    figure = os.path.join(study_dir, report.TRAINING_FIGURE)
    self.assertEqual(os.path.exists(figure), plot.available())
    if os.path.exists(figure):
      self.assertIn("(%s)" % report.TRAINING_FIGURE, text)


def _record(study_dir, name):
  with open(os.path.join(study_dir, name), "rb") as f:
    return np.asarray(pickle.load(f), dtype=np.float64)


if __name__ == "__main__":
  tf.test.main()
