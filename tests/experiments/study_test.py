"""The study driver end to end (--quick, on small fake data sets).

One quick study (`test_quick_study`) runs the whole pipeline: meta-training,
evaluation on every set, the report, a rerun. To stay within about two
minutes it trains two of the five variants, which between them use every
training option of the others (Hessian term, curriculum, imitation,
validation meta-objective); the other three differ from them only in
which of these flags they set (plan_test checks their command lines).
The test checks the report's structure, that its numbers are those of the
runs' own files (recomputed here from the per-seed loss records and metrics
files), and that a rerun skips what is finished and redoes only what is
missing.
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

from experiments import plan
from experiments import report
from experiments import stages
from experiments import study

# Every training option of the five variants, in two.
_VARIANTS = ["l2o-scale+cl+il+hessian", "l2o-scale+validation"]


def _values(study_dir, data_dir, **changes):
  values = {"study_dir": study_dir, "quick": True,
            "variants": list(_VARIANTS),
            "evaluation_sets": list(plan.EVALUATION_SET_NAMES),
            "data_dir": data_dir, "reference_train_dir": None,
            "report_only": False}
  for name in study._BUDGET_FLAGS:  # pylint: disable=protected-access
    values[name] = None
  values.update(changes)
  return values


class StudyTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.root = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, self.root)
    self.data_dir = os.path.join(self.root, "data")
    self.study_dir = os.path.join(self.root, "study")

  def _write_data(self):
    # MNIST: 5,000 validation + 300 training images, 300 test images.
    test_util.write_fake_mnist(os.path.join(self.data_dir, "mnist"),
                               num_train=5300, num_test=300, seed=1)
    test_util.write_fake_mnist(os.path.join(self.data_dir, "fashion-mnist"),
                               num_train=5300, num_test=300, seed=2)

  def _run(self, **changes):
    out = io.StringIO()
    budget_flags = study._BUDGET_FLAGS  # pylint: disable=protected-access
    explicit = (set(changes) & set(budget_flags)) | {"variants",
                                                      "evaluation_sets"}
    path = study.run(_values(self.study_dir, self.data_dir, **changes),
                     explicit=explicit, out=out,
                     command=["study.py", "--quick"])
    return path, out.getvalue()

  def test_quick_study(self):
    """The whole pipeline once (one test: it takes about two minutes)."""
    self._write_data()
    path, log = self._run()
    with open(path) as f:
      text = f.read()
    with open(os.path.join(self.study_dir, report.REPORT_JSON)) as f:
      content = json.load(f)
    self._check_structure(text)
    self._check_numbers(content)
    self._check_training_logs(log)
    self._check_rerun()

  def _check_structure(self, text):
    names = _VARIANTS + [plan.INITIAL] + [b.name for b in plan.BASELINES]
    for evaluation_set in plan.EVALUATION_SET_NAMES:
      section = text.split("## %s\n" % evaluation_set)[1].split("\n## ")[0]
      main_table = section.split("What meta-training added")[0]
      rows = [line for line in main_table.splitlines()
              if line.startswith("| ") and not line.startswith("| optimizer")]
      self.assertEqual([r.split(" | ")[0][2:] for r in rows], names)
      self.assertNotIn("not run yet", section)
      self.assertEqual("test accuracy" in section.split("\n\n")[1],
                       "heldout" in evaluation_set)
      self.assertIn("What meta-training added", section)
      added = section.split("| variant − initial |")[1].split("\n\n")[0]
      self.assertEqual([line.split(" | ")[0][2:] for line in
                        added.strip().splitlines()[2:]], _VARIANTS)
    self.assertIn("Quick study", text)

  def _check_numbers(self, content):
    for evaluation_set in content["sets"]:
      for row in evaluation_set["rows"]:
        losses = []
        for name in row["files"]:
          with open(os.path.join(self.study_dir, name), "rb") as f:
            losses.append(np.asarray(pickle.load(f), dtype=np.float64))
        self.assertLen(losses, len(plan.QUICK.seeds))
        last100 = [np.mean(l[-100:]) for l in losses]
        self.assertAllClose(row["final_last100"]["mean"], np.mean(last100),
                            rtol=1e-6)
        self.assertAllClose(row["final_last100"]["std"], np.std(last100),
                            rtol=1e-5, atol=1e-9)
        if "loss@100" in row:
          self.assertAllClose(row["loss@100"]["mean"],
                              np.mean([l[99] for l in losses]), rtol=1e-6)
        if evaluation_set["heldout"]:
          accuracies = []
          for name in row["files"]:
            metrics = name.replace("_eval_loss_record.pickle-",
                                   "_metrics-") + ".json"
            with open(os.path.join(self.study_dir, metrics)) as f:
              accuracies.append(json.load(f)["final"]["test_accuracy"])
          self.assertAllClose(row["test_accuracy"]["mean"],
                              np.mean(accuracies), rtol=1e-6)
      rows = {row["name"]: row for row in evaluation_set["rows"]}
      for name in _VARIANTS:
        # What meta-training added: the variant minus its start, per seed.
        mine, start = (self._last100(rows[n]) for n in (name, plan.INITIAL))
        added = rows[name]["vs_initial"]["final_last100"]
        self.assertAllClose(added["mean"], np.mean(mine - start),
                            rtol=1e-6)
        self.assertAllClose(added["std"], np.std(mine - start), rtol=1e-5,
                            atol=1e-9)
    training = {entry["variant"]: entry for entry in content["training"]}
    for name in _VARIANTS:
      marker = os.path.join(self.study_dir, name, "meta_seed1",
                            stages.MARKER)
      with open(marker) as f:
        seconds = json.load(f)["seconds"]
      self.assertEqual(training[name]["seconds"], seconds)
      self.assertGreater(seconds, 0)
      # Both variants of the seed started from the `initial` row's values.
      self.assertTrue(training[name]["same_start"])
      self.assertGreater(training[name]["meta_parameter_change"], 0.)

  def _last100(self, row):
    """Per seed, the last-100 mean of a row's loss records."""
    means = []
    for name in row["files"]:
      with open(os.path.join(self.study_dir, name), "rb") as f:
        means.append(np.mean(np.asarray(pickle.load(f),
                                        dtype=np.float64)[-100:]))
    return np.array(means)

  def _check_training_logs(self, log):
    # Each training stage's own output: the curriculum runs show their
    # stage, and only the Hessian variants build the regulariser.
    for variant in (v for v in plan.VARIANTS if v.name in _VARIANTS):
      block = log.split("train %s, meta-seed 1  (" % variant.name)[1].split(
          "\n[")[0]
      self.assertEqual("curriculum stage" in block,
                       variant.flags.get("if_cl") == "True")
      self.assertEqual("adds nothing to the meta-objective" in block,
                       "regularize_time" not in variant.flags)
      self.assertIn("model.ckpt-0", block)

  def _check_rerun(self):
    all_stages = plan.stages(self.study_dir, plan.QUICK, _VARIANTS,
                             data_dir=os.path.abspath(self.data_dir))
    before = {s.name: stages.read_marker(s) for s in all_stages}
    # A half-written evaluation: its summary is gone.
    folder = plan.evaluation_dir(self.study_dir, "mnist_mlp_relu", "adam")
    os.remove(os.path.join(folder, "summary.json"))
    _, log = self._run()
    ran = [line for line in log.splitlines()
           if line.startswith("[") and not line.startswith("[done]")]
    self.assertLen(ran, 1)
    self.assertIn("evaluate adam on mnist_mlp_relu", ran[0])
    for stage in all_stages:
      marker = stages.read_marker(stage)
      if stage.name == "evaluate adam on mnist_mlp_relu":
        self.assertEqual(marker["attempts"], 2)
      else:
        self.assertEqual(marker, before[stage.name])
    with self.assertRaisesRegex(study.StudyError, "other settings"):
      self._run(mlp_steps=300)

  def test_a_folder_made_before_new_budget_fields_still_resumes(self):
    budget = plan.Budget().as_dict()
    older = {k: v for k, v in budget.items()
             if not k.startswith("selection_")}
    os.makedirs(self.study_dir)
    with open(os.path.join(self.study_dir, study.STUDY_FILE), "w") as f:
      json.dump({"budget": older, "data_dir": None, "metarun_extra": []}, f)
    study.check_study_file(self.study_dir, {"budget": budget,
                                            "data_dir": None,
                                            "metarun_extra": []})
    changed = dict(budget, selection_seeds=[101])
    with self.assertRaisesRegex(study.StudyError, "budget differ"):
      study.check_study_file(self.study_dir, {"budget": changed,
                                              "data_dir": None,
                                              "metarun_extra": []})

  def test_selection_seeds_must_differ_from_the_evaluation_seeds(self):
    values = _values(self.study_dir, self.data_dir, plan="recipe",
                     selection_seeds=["6"])
    with self.assertRaisesRegex(study.StudyError,
                                "--selection_seeds=6: must differ"):
      study.budget_from_flags(values, {"selection_seeds"})

  def test_bad_names_are_refused(self):
    with self.assertRaisesRegex(study.StudyError, "--variants=nope"):
      self._run(variants=["nope"])
    with self.assertRaisesRegex(study.StudyError,
                                "--reference_train_dir=.*model.ckpt-0"):
      self._run(reference_train_dir=self.root)
    with self.assertRaisesRegex(study.StudyError, "--study_dir is empty"):
      study.run(_values("", self.data_dir), explicit=(), out=io.StringIO())


if __name__ == "__main__":
  tf.test.main()

