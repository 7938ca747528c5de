"""Tests of the validation meta-objective (--meta_objective_split=validation).

A softmax regression (FullyConnected without hidden layers, 3 classes)
trained by GlobalLearningRate (x' = x - lr g) is small enough to follow in
numpy: the meta-objective must be the mean of the validation losses along
the trajectory over the validation loss at the start, and the trajectory
must not depend on the validation samples at all.
"""

from tests import test_util

import io
import os
import tempfile

import numpy as np
import scipy.special
import tensorflow.compat.v1 as tf

import metaopt
from meta_training import config as meta_config
from meta_training import data as data_lib
from meta_training import graph as graph_lib
from optimizer import global_learning_rate
from problems import datasets
from problems import problem_generator as pg
from problems import problem_sets
from problems import problem_spec

_FEATURES, _CLASSES, _LR = 4, 3, 0.5


def _loss(params, data, labels):
  """Mean softmax cross-entropy of the regression, in float64."""
  weights, bias = (np.asarray(p, np.float64) for p in params)
  logits = data.reshape(len(data), -1) @ weights + bias
  return float(np.mean(scipy.special.logsumexp(logits, axis=1) -
                       logits[np.arange(len(labels)), labels]))


def _grad(params, data, labels):
  weights, bias = (np.asarray(p, np.float64) for p in params)
  x = data.reshape(len(data), -1).astype(np.float64)
  probabilities = scipy.special.softmax(x @ weights + bias, axis=1)
  probabilities[np.arange(len(labels)), labels] -= 1.
  probabilities /= len(labels)
  return [x.T @ probabilities, probabilities.sum(axis=0)]


def _dataset(size, seed):
  rng = np.random.RandomState(seed)
  return datasets.Dataset(
      rng.standard_normal((size, _FEATURES)).astype(np.float32),
      rng.randint(0, _CLASSES, size).astype(np.int32))


class ValidationObjectiveTest(tf.test.TestCase):

  def _graph(self):
    spec = problem_spec.Spec(pg.FullyConnected, (_FEATURES, _CLASSES),
                             {"hidden_sizes": ()})
    optimizer = problem_spec.Spec(global_learning_rate.GlobalLearningRate,
                                  (), {"initial_rate": _LR})
    return graph_lib.build_meta_graph(spec, optimizer)

  def _run(self, train, validation, lengths=(3,)):
    """Meta-objective and final parameters of one unroll per length."""
    with tf.Graph().as_default():
      graph = self._graph()
      out = graph.train_output
      data = data_lib.unroll_data(train, 2, list(lengths), 6, False,
                                  np.random.RandomState(3),
                                  validation=validation)
      x0 = data_lib.initial_parameters(graph.problem,
                                       np.random.RandomState(4))
      with tf.Session() as sess:
        sess.run([tf.global_variables_initializer(),
                  tf.local_variables_initializer()])
        results = []
        for unroll in range(len(lengths)):
          results.append(sess.run(
              [out.meta_objective, out.carried_values[1:3]],
              data_lib.feed(out, x0, list(lengths), unroll, data[unroll],
                            reset=unroll == 0)))
          sess.run(graph.propagate_op, data_lib.feed(
              out, x0, list(lengths), unroll, data[unroll], unroll == 0))
    return results, list(data), x0

  def test_meta_objective_is_the_validation_loss_along_the_trajectory(self):
    train, validation = _dataset(8, 0), _dataset(10, 1)
    [(meta_objective, params)], [unroll], x0 = self._run(train, validation)
    self.assertEqual(len(unroll.objective_data), 6)
    trajectory = [x0]
    for batch in unroll.batches:
      x = trajectory[-1]
      grads = _grad(x, unroll.mini_data[batch], unroll.mini_labels[batch])
      trajectory.append([p - _LR * g for p, g in zip(x, grads)])
    held = (unroll.objective_data, unroll.objective_labels)
    losses = [_loss(x, *held) for x in trajectory]
    # The objectives of steps 0..T-1 (before each step), over F0 + eps.
    expected = np.mean(losses[:-1]) / (losses[0] + 1e-6)
    self.assertAllClose(meta_objective, expected, rtol=1e-5)
    self.assertAllClose(params[0], trajectory[-1][0], rtol=1e-5, atol=1e-6)
    train_losses = [_loss(x, unroll.mini_data, unroll.mini_labels)
                    for x in trajectory]
    self.assertNotAllClose(expected,
                           np.mean(train_losses[:-1]) / train_losses[0])

  def test_the_steps_never_see_validation_samples(self):
    train = _dataset(8, 0)
    first, _, _ = self._run(train, _dataset(10, 1), lengths=(2, 3))
    other = _dataset(10, 2)
    second, _, _ = self._run(train, other, lengths=(2, 3))
    for (objective_a, params_a), (objective_b, params_b) in zip(first,
                                                                second):
      self.assertAllEqual(params_a[0], params_b[0])
      self.assertAllEqual(params_a[1], params_b[1])
      self.assertNotAllClose(objective_a, objective_b)

  def test_training_draws_and_default_objective_are_unchanged(self):
    train = _dataset(8, 0)
    plain = data_lib.unroll_data(train, 2, [2, 3], 6, False,
                                 np.random.RandomState(3))
    held = data_lib.unroll_data(train, 2, [2, 3], 6, False,
                                np.random.RandomState(3),
                                validation=_dataset(10, 1))
    for a, b in zip(plain, held):
      self.assertAllEqual(a.mini_data, b.mini_data)
      self.assertAllEqual(a.batches, b.batches)
      self.assertIsNone(a.objective_data)
      self.assertEqual(len(b.objective_data), 6)
    # Fed the unroll's own mini-dataset as objective data, the
    # meta-objective is the default one, bit for bit.
    with_train = [u._replace(objective_data=u.mini_data,
                             objective_labels=u.mini_labels) for u in plain]
    self.assertEqual(self._objectives(plain), self._objectives(with_train))

  def _objectives(self, data):
    with tf.Graph().as_default():
      graph = self._graph()
      out = graph.train_output
      x0 = data_lib.initial_parameters(graph.problem,
                                       np.random.RandomState(4))
      with tf.Session() as sess:
        sess.run([tf.global_variables_initializer(),
                  tf.local_variables_initializer()])
        return [float(sess.run(out.meta_objective, data_lib.feed(
            out, x0, [2, 3], i, d, reset=i == 0))) for i, d in
                enumerate(data)]

  def test_frozen_data_uses_the_first_validation_samples(self):
    validation = _dataset(10, 1)
    [unroll] = data_lib.unroll_data(_dataset(8, 0), 2, [3], 6, True,
                                    np.random.RandomState(3),
                                    validation=validation)
    self.assertAllEqual(unroll.objective_data, validation.data[:6])

  def test_training_parts(self):
    train, validation = _dataset(8, 0), _dataset(10, 1)
    splits = datasets.Splits(train, validation, None)
    self.assertEqual(data_lib.training_parts(splits, "train"), (train, None))
    self.assertEqual(data_lib.training_parts(splits, "validation"),
                     (train, validation))
    self.assertEqual(data_lib.training_parts(train, "train"), (train, None))
    with self.assertRaisesRegex(ValueError, "needs a validation part"):
      data_lib.training_parts(train, "validation")
    with self.assertRaisesRegex(ValueError, "expected one of train"):
      data_lib.training_parts(train, "test")

  def test_meta_training_with_curriculum_imitation_and_regulariser(self):
    spec = problem_spec.Spec(pg.FullyConnected, (_FEATURES, _CLASSES),
                             {"hidden_sizes": ()})
    optimizer = problem_spec.Spec(global_learning_rate.GlobalLearningRate,
                                  (), {"initial_rate": 0.1})
    splits = datasets.Splits(_dataset(40, 0), _dataset(20, 1), None)
    from regularizers import registry  # pylint: disable=g-import-not-at-top
    logdir = tempfile.mkdtemp()
    out = io.StringIO()
    best = metaopt.train_optimizer(
        logdir, optimizer, [(spec, splits, 4)],
        schedule=meta_config.Schedule(
            num_meta_iterations=4, fixed=True, unroll_length=5,
            curriculum=True, curriculum_steps=(10, 20)),
        evaluation=meta_config.Evaluation(epochs=1),
        data=meta_config.Data(mini_batch_size=10,
                              meta_objective_split="validation"),
        regularizer=meta_config.Regularizer(
            timing="always", on_meta_objective=True, kind="hessian",
            iterations=2, fn=registry.make_regularizer("hessian", 2)),
        imitation=meta_config.Imitation(enabled=True, ratio=0.5),
        seed=1, out=out)
    self.assertTrue(np.isfinite(best))
    self.assertTrue(os.path.exists(os.path.join(logdir,
                                                "model.ckpt-0.index")))
    self.assertIn("curriculum stage", out.getvalue())

  def test_a_problem_without_validation_part_is_refused_first(self):
    spec = problem_spec.Spec(pg.FullyConnected, (_FEATURES, _CLASSES),
                             {"hidden_sizes": ()})
    optimizer = problem_spec.Spec(global_learning_rate.GlobalLearningRate,
                                  (), {})
    logdir = os.path.join(tempfile.mkdtemp(), "run")
    with self.assertRaisesRegex(ValueError, "validation part"):
      metaopt.train_optimizer(
          logdir, optimizer, [(spec, _dataset(8, 0), 4)],
          data=meta_config.Data(meta_objective_split="validation"),
          out=io.StringIO())
    self.assertFalse(os.path.exists(logdir))

  def test_mnist_sets_get_the_hold_out(self):
    root = tempfile.mkdtemp()
    written = test_util.write_fake_mnist(os.path.join(root, "mnist"),
                                         num_train=5012, num_test=4)
    [(_, splits, _)] = problem_sets.training_problems(
        ["mnist_mlp"], data_dir=root, validation=True)
    images = written["train"][0].astype(np.float32) / 255.
    self.assertAllClose(splits.validation.data[..., 0], images[:5000])
    self.assertAllClose(splits.train.data[..., 0], images[5000:])
    with self.assertRaisesRegex(ValueError, "--include_quadratic_problems"):
      problem_sets.training_problems(["quadratic", "mnist_mlp"],
                                     data_dir=root, validation=True)


if __name__ == "__main__":
  tf.test.main()
