"""Tests of evaluation.metrics: held-out loss and accuracy during a run."""

from tests import test_util

import numpy as np
import tensorflow.compat.v1 as tf

from evaluation import baselines
from evaluation import data_pool
from evaluation import metrics
from evaluation import runner
from problems import datasets
from problems import problem_generator
from problems import problem_spec


def _dataset(rng, n, n_features=10, n_classes=3):
  return datasets.Dataset(rng.randn(n, n_features).astype(np.float32),
                          rng.randint(0, n_classes, n).astype(np.int32))


def _numpy_mlp(params, data):
  hidden = np.maximum(data.dot(params[0]) + params[1], 0.)
  return hidden.dot(params[2]) + params[3]


def _numpy_metrics(params, dataset):
  logits = _numpy_mlp(params, dataset.data).astype(np.float64)
  shifted = logits - logits.max(1, keepdims=True)
  log_probs = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
  loss = -np.mean(log_probs[np.arange(dataset.size), dataset.labels])
  accuracy = np.mean(np.argmax(logits, 1) == dataset.labels)
  return loss, accuracy


class ScheduleTest(test_util.TestCase):

  def test_recording_steps_start_at_zero_and_end_at_the_last_step(self):
    self.assertEqual(metrics.recording_steps(30, 10), [0, 10, 20, 30])
    self.assertEqual(metrics.recording_steps(25, 10), [0, 10, 20, 25])
    self.assertEqual(metrics.recording_steps(1, 5), [0, 1])

  def test_the_default_interval_gives_about_fifty_points(self):
    self.assertEqual(metrics.default_interval(10000), 200)
    self.assertLen(metrics.recording_steps(10000, 200), 51)
    self.assertEqual(metrics.default_interval(7), 1)


class PredictionTest(test_util.TestCase):

  def test_argmax_of_the_logits_not_of_an_activation(self):
    logits = np.array([[-3., -1., -2.], [-1., -5., -0.5]], np.float32)
    with self.cached_session() as sess:
      self.assertAllEqual(sess.run(metrics.predictions(tf.constant(logits))),
                          [1, 2])

  def test_two_classes_follow_the_sign_of_the_first_logit(self):
    logits = np.array([[0.3, 5.], [-0.2, -9.]], np.float32)
    with self.cached_session() as sess:
      self.assertAllEqual(sess.run(metrics.predictions(tf.constant(logits))),
                          [1, 0])


class HeldOutRunTest(test_util.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.RandomState(4)
    self.splits = datasets.Splits(_dataset(rng, 200), _dataset(rng, 50),
                                  _dataset(rng, 61))
    self.spec = problem_spec.Spec(
        problem_generator.FullyConnected, (10, 3),
        {"hidden_sizes": (8,), "activation": tf.nn.relu})
    config = metrics.Config(splits=self.splits._asdict(), every=10,
                            subset=50, chunk_size=16)
    self.run_ = runner.test_optimizer(
        baselines.make_baseline("SGD", 0.5), self.spec, 30,
        dataset=self.splits.train, batch_size=20, seed=3,
        options=runner.RunOptions(batch_rng=np.random.RandomState(0),
                                  metrics=config))

  def test_final_loss_and_accuracy_equal_numpy_on_every_split(self):
    final = self.run_.final_metrics
    for name in ("train", "validation", "test"):
      loss, accuracy = _numpy_metrics(self.run_.parameters,
                                      getattr(self.splits, name))
      self.assertAllClose(final[name + "_loss"], loss, rtol=1e-5)
      self.assertAllClose(final[name + "_accuracy"], accuracy, atol=1e-9)
    self.assertAllClose(final["train_loss"], self.run_.final_objective,
                        rtol=1e-5)
    self.assertIsNone(self.run_.curvature)

  def test_history_has_every_recording_step_and_a_fixed_training_subset(self):
    history = self.run_.metrics
    self.assertEqual(history["steps"], [0, 10, 20, 30])
    for key in ("train_loss", "train_accuracy", "validation_loss",
                "validation_accuracy", "test_loss", "test_accuracy"):
      self.assertLen(history[key], 4)
    self.assertEqual(self.run_.metrics_subset, 50)
    # The last point measures the final parameters on each split's fixed
    # subset: the first 50 of the pool's permutation (the whole of the
    # 50-sample validation split).
    for name in ("train", "validation", "test"):
      split = getattr(self.splits, name)
      order = np.random.RandomState(data_pool.SUBSET_SEED).permutation(
          split.size)[:50]
      subset = datasets.Dataset(split.data[order], split.labels[order])
      loss, accuracy = _numpy_metrics(self.run_.parameters, subset)
      self.assertAllClose(history[name + "_loss"][-1], loss, rtol=1e-5)
      self.assertAllClose(history[name + "_accuracy"][-1], accuracy,
                          atol=1e-9)
    self.assertAllClose(history["validation_loss"][-1],
                        self.run_.final_metrics["validation_loss"], rtol=1e-5)
    # Training moved the held-out loss.
    self.assertNotAllClose(history["validation_loss"][0],
                           history["validation_loss"][-1])

  def test_recording_changes_neither_the_losses_nor_the_timings_count(self):
    plain = runner.test_optimizer(
        baselines.make_baseline("SGD", 0.5), self.spec, 30,
        dataset=self.splits.train, batch_size=20, seed=3,
        options=runner.RunOptions(batch_rng=np.random.RandomState(0)))
    # Not bit-identical: TensorFlow's CPU kernels round differently from run
    # to run (about 1e-4 after 30 steps at this learning rate, with or
    # without recording); a recording that moved the parameters or used up
    # batches would change the losses by far more.
    self.assertAllClose(plain.objective_values, self.run_.objective_values,
                        rtol=2e-3)
    self.assertLen(self.run_.seconds_per_step, 30)
    self.assertIsNone(plain.metrics)


if __name__ == "__main__":
  tf.test.main()
