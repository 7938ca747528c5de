"""Tests of evaluation.runner.test_optimizer against numpy trajectories."""

from tests import test_util

import os

import numpy as np
import tensorflow.compat.v1 as tf

from evaluation import baselines
from evaluation import runner
from optimizer import checkpoints
from optimizer import global_learning_rate
from optimizer import hierarchical_rnn
from problems import datasets
from problems import problem_generator as pg
from problems import problem_spec


class MeanDistance(pg.Problem):
  """f(w; X) = mean_i ||w - x_i||^2 / 2: gradient w - mean(X)."""

  def __init__(self, ndim):
    super().__init__([(ndim,)], random_seed=0, noise_stdev=0.)

  def objective(self, parameters, data=None, labels=None):
    return 0.5 * tf.reduce_mean(tf.reduce_sum(
        tf.square(parameters[0][None, :] - data), axis=1))


class Anchor(pg.Problem):
  """Data-free f(w) = ||w - c||^2 / 2."""

  def __init__(self, center):
    super().__init__([(len(center),)], random_seed=0, noise_stdev=0.)
    self.center = np.asarray(center, np.float32)

  def objective(self, parameters, data=None, labels=None):
    return 0.5 * tf.reduce_sum(tf.square(parameters[0] - self.center))


def numpy_sgd(w0, data, batches, rate):
  """Losses before each step, the parameters after each step."""
  w = np.array(w0, np.float64)
  losses, trajectory = [], [w.copy()]
  for batch in batches:
    x = data[batch]
    losses.append(0.5 * np.mean(np.sum(np.square(w - x), axis=1)))
    w = w - rate * (w - x.mean(axis=0))
    trajectory.append(w.copy())
  return np.array(losses), trajectory


def whole_loss(w, data):
  return 0.5 * np.mean(np.sum(np.square(w - data), axis=1))


def save_global_learning_rate(folder, rate, name="model.ckpt-5"):
  """A checkpoint of GlobalLearningRate with `rate`, plus a decoy parameter."""
  with tf.Graph().as_default():
    opt = global_learning_rate.GlobalLearningRate()
    with tf.variable_scope(pg.PARAMETER_SCOPE):
      tf.Variable(np.full(3, 100., np.float32))
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      opt.learning_rate.load(rate, sess)
      return tf.train.Saver().save(sess, os.path.join(folder, name))


class TestOptimizerTest(test_util.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.RandomState(0)
    self.data = rng.randn(2500, 3).astype(np.float32)
    self.dataset = datasets.Dataset(self.data,
                                    np.zeros(len(self.data), np.int32))
    self.w0 = [np.array([1., -2., 3.], np.float32)]
    self.batches = datasets.batch_indices(
        len(self.data), 30, 64, rng=np.random.RandomState(3))

  def _run(self, optimizer, num_iter=30, log=None, log_every=1000,
           **kwargs):
    return runner.test_optimizer(
        optimizer, problem_spec.Spec(MeanDistance, (3,), {}), num_iter,
        dataset=self.dataset, batch_size=64, seed=self.w0,
        options=runner.RunOptions(batch_rng=np.random.RandomState(3),
                                  log=log, log_every=log_every), **kwargs)

  def test_sgd_follows_numpy_and_records_pre_step_losses(self):
    run = self._run(baselines.make_baseline("SGD", 0.1))
    losses, trajectory = numpy_sgd(self.w0[0], self.data, self.batches, 0.1)
    self.assertAllClose(run.objective_values, losses, rtol=1e-5)
    self.assertAllClose(run.parameters[0], trajectory[-1], rtol=1e-5)
    self.assertLen(run.seconds_per_step, 30)
    self.assertIsNone(run.checkpoint_path)
    # It unpacks like the original's (objective_values, parameters, records).
    values, parameters, records = run
    self.assertIs(values, run.objective_values)
    self.assertIs(parameters, run.parameters)
    self.assertEqual(records, {})

  def test_final_objective_is_the_whole_data_loss(self):
    run = self._run(baselines.make_baseline("SGD", 0.1))
    _, trajectory = numpy_sgd(self.w0[0], self.data, self.batches, 0.1)
    self.assertAllClose(run.final_objective,
                        whole_loss(trajectory[-1], self.data), rtol=1e-5)

  def test_learned_optimizer_gets_its_meta_parameters_from_the_checkpoint(
      self):
    folder = self.make_tempdir()
    save_global_learning_rate(folder, 0.05, "model.ckpt-1")
    path = save_global_learning_rate(folder, 0.2, "model.ckpt-9")
    for name, rate in (("model.ckpt-1", 0.05), ("", 0.2)):
      run = self._run(global_learning_rate.GlobalLearningRate, logdir=folder,
                      restore_model_name=name)
      losses, _ = numpy_sgd(self.w0[0], self.data, self.batches, rate)
      # The decoy "parameters" variable of the checkpoint is not restored.
      self.assertAllClose(run.objective_values, losses, rtol=1e-5)
    self.assertEqual(run.checkpoint_path, path)

  def test_without_a_checkpoint_the_initial_meta_parameters_are_used(self):
    run = self._run(global_learning_rate.GlobalLearningRate)
    losses, _ = numpy_sgd(self.w0[0], self.data, self.batches, 1e-3)
    self.assertAllClose(run.objective_values, losses, rtol=1e-5)

  def test_a_missing_checkpoint_is_a_checkpoint_error(self):
    folder = self.make_tempdir()
    save_global_learning_rate(folder, 0.05)
    with self.assertRaisesRegex(checkpoints.CheckpointError,
                                "no checkpoint model.ckpt-2 .*model.ckpt-5"):
      self._run(global_learning_rate.GlobalLearningRate, logdir=folder,
                restore_model_name="model.ckpt-2")

  def test_every_call_builds_its_own_graph(self):
    graph = tf.Graph()
    with graph.as_default():
      self._run(baselines.make_baseline("Adam"), num_iter=2)
      self._run(baselines.make_baseline("Adam"), num_iter=2)
      self.assertEmpty(graph.get_operations())

  def test_records_hold_the_original_entries(self):
    run = self._run(baselines.make_baseline("Momentum", 0.1), num_iter=5,
                    record_every=2)
    self.assertEqual(run.records["iter"], [0, 2, 4])
    for key in ("objective", "grad_norm", "param_norm", "grad", "param"):
      self.assertLen(run.records[key], 3)
    self.assertIn("parameters/Variable:0_momentum", run.records)
    w = self.w0[0]
    self.assertAllClose(run.records["param"][0][0], w)
    self.assertAllClose(run.records["objective"][0],
                        whole_loss(w, self.data), rtol=1e-5)
    gradient = w - self.data[self.batches[0]].mean(axis=0)
    self.assertAllClose(run.records["grad_norm"][0],
                        np.linalg.norm(gradient), rtol=1e-5)

  def test_data_free_problems_need_no_dataset(self):
    center = [0.5, -1.]
    run = runner.test_optimizer(
        baselines.make_baseline("SGD", 0.5),
        problem_spec.Spec(Anchor, (center,), {}), 4,
        seed=[np.zeros(2, np.float32)])
    # Each step halves the distance to the center.
    distance = 0.5 * np.sum(np.square(center))
    self.assertAllClose(run.objective_values,
                        distance * 0.25 ** np.arange(4), rtol=1e-5)
    self.assertAllClose(run.final_objective, distance * 0.25 ** 4, rtol=1e-5)

  def test_progress_lines_count_steps(self):
    lines = []
    self._run(baselines.make_baseline("SGD", 0.1), num_iter=30,
              log=lines.append, log_every=10)
    self.assertEqual([line.split()[1] for line in lines],
                     ["10/30", "20/30", "30/30"])

  def test_attention_reports_the_loss_at_the_true_parameters(self):
    def build():
      return hierarchical_rnn.HierarchicalRNN([4, 5, 5], use_attention=True,
                                              random_seed=1)
    run = self._run(build, num_iter=3)
    self.assertAllClose(run.objective_values[0],
                        whole_loss(self.w0[0], self.data[self.batches[0]]),
                        rtol=1e-5)
    self.assertTrue(np.all(np.isfinite(run.objective_values)))


class BuildWithNumpySeedTest(test_util.TestCase):

  def test_same_seed_same_problem_and_global_state_untouched(self):
    spec = problem_spec.Spec(pg.Quadratic, (4,), {})
    np.random.seed(11)
    expected_next = np.random.rand()
    np.random.seed(11)
    first = runner.build_with_numpy_seed(spec, 3)
    second = runner.build_with_numpy_seed(spec, 3)
    self.assertEqual(first.random_seed, second.random_seed)
    self.assertEqual(np.random.rand(), expected_next)


if __name__ == "__main__":
  tf.test.main()
