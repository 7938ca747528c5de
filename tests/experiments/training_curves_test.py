"""Reading a run's meta-training curves back from its event files."""

from tests import test_util

import os
import shutil
import tempfile

import numpy as np
import tensorflow.compat.v1 as tf

from evaluation import plot
from experiments import training_curves


def _write(writer, tag, value, step, wall_time):
  event = tf.Event(wall_time=wall_time, step=step, summary=tf.Summary(
      value=[tf.Summary.Value(tag=tag, simple_value=value)]))
  writer.add_event(event)


class TrainingCurvesTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.folder = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, self.folder)

  def test_values_steps_and_wall_time_of_a_resumed_run(self):
    first = tf.summary.FileWriter(self.folder)
    for step in range(1, 6):
      _write(first, "MetaObjective", -0.1 * step, step, 1000. + step)
    _write(first, "Evaluation", 2.0, 5, 1006.)
    _write(first, "Ignored", 7.0, 5, 1006.)
    first.close()
    # The resumed run redoes meta-updates 4 and 5 in a second file.
    second = tf.summary.FileWriter(self.folder, filename_suffix=".resumed")
    for step in (4, 5, 6):
      _write(second, "MetaObjective", -1.0 * step, step, 2000. + step)
    second.close()
    curves = training_curves.read(self.folder)
    self.assertEqual(sorted(curves), ["Evaluation", "MetaObjective"])
    objective = curves["MetaObjective"]
    self.assertAllEqual(objective["step"], [1, 2, 3, 4, 5, 6])
    self.assertAllClose(objective["value"],
                        [-0.1, -0.2, -0.3, -4.0, -5.0, -6.0])
    # Seconds since the first event of the run (the FileWriter's own
    # file-version event comes first, at the writer's start).
    self.assertAllClose(np.diff(objective["seconds"])[:2], [1., 1.])
    self.assertAllClose(objective["seconds"][5] - objective["seconds"][0],
                        2006. - 1001.)
    self.assertAllEqual(curves["Evaluation"]["step"], [5])
    self.assertAllClose(curves["Evaluation"]["value"], [2.0])

  def test_an_empty_folder_has_no_curves_and_no_figure(self):
    self.assertEqual(training_curves.read(self.folder), {})
    path = os.path.join(self.folder, "curves.png")
    self.assertIsNone(plot.plot_meta_training_curves(path, {"run": {}}))
    self.assertFalse(os.path.exists(path))

  def test_the_figure_is_a_png(self):
    if not plot.available():
      self.skipTest("matplotlib is not installed")
    writer = tf.summary.FileWriter(self.folder)
    for step in range(1, 30):
      _write(writer, "MetaObjective", np.sin(step), step, 100. + step)
    _write(writer, "Evaluation", 0.5, 10, 110.)
    writer.close()
    path = os.path.join(self.folder, "curves.png")
    self.assertEqual(plot.plot_meta_training_curves(
        path, {"run 1": training_curves.read(self.folder)}, window=5), path)
    with open(path, "rb") as f:
      self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


if __name__ == "__main__":
  tf.test.main()
