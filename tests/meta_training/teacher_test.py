"""Tests of the imitation teacher against an independent numpy Adam."""

from tests import test_util

import numpy as np
import tensorflow.compat.v1 as tf

from meta_training import teacher
from problems import problem_generator as pg


def _numpy_adam_steps(grad_fn, x0, num_steps, lr=0.01, beta1=0.9,
                      beta2=0.999, eps=1e-8):
  """TF1 AdamOptimizer's displacements (x_before - x_after) per step."""
  x = x0.astype(np.float64)
  m = np.zeros_like(x)
  v = np.zeros_like(x)
  steps = []
  for t in range(1, num_steps + 1):
    g = grad_fn(x)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    lr_t = lr * np.sqrt(1 - beta2**t) / (1 - beta1**t)
    step = lr_t * m / (np.sqrt(v) + eps)
    steps.append(step)
    x = x - step
  return steps


class TeacherTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.problem = pg.Quadratic(4, random_seed=2)
    w, y = self.problem.w.astype(np.float64), self.problem.y
    self.grad = lambda x: w.T.dot(w.dot(x) - y)
    self.x0 = np.random.RandomState(0).randn(4, 1).astype(np.float32)

  def test_targets_are_adam_steps_across_unrolls(self):
    coach = teacher.Teacher(self.problem)
    targets = coach.targets([self.x0], [(None, None, [None] * 3),
                                        (None, None, [None] * 2)])
    expected = _numpy_adam_steps(self.grad, self.x0, 5)
    self.assertEqual(targets[0][0].shape, (3, 4, 1))
    self.assertEqual(targets[1][0].shape, (2, 4, 1))
    got = np.concatenate([targets[0][0], targets[1][0]])
    self.assertAllClose(got, np.stack(expected), rtol=1e-4, atol=1e-7)

  def test_k_teacher_steps_sum_per_learner_step(self):
    coach = teacher.Teacher(self.problem)
    targets = coach.targets([self.x0], [(None, None, [None] * 4)], k=2)
    steps = _numpy_adam_steps(self.grad, self.x0, 4)
    expected = np.stack([steps[0] + steps[1], steps[2] + steps[3]])
    self.assertAllClose(targets[0][0], expected, rtol=1e-4, atol=1e-7)
    with self.assertRaisesRegex(ValueError, "multiple of k"):
      coach.targets([self.x0], [(None, None, [None] * 3)], k=2)

  def test_each_call_restarts_the_teacher(self):
    coach = teacher.Teacher(self.problem)
    first = coach.targets([self.x0], [(None, None, [None] * 2)])
    second = coach.targets([self.x0], [(None, None, [None] * 2)])
    self.assertAllClose(first[0][0], second[0][0])

  def test_teacher_uses_the_given_batches(self):
    problem = pg.SoftmaxRegression(3, 3, random_seed=0)
    rng = np.random.RandomState(1)
    data = rng.randn(10, 3).astype(np.float32)
    labels = rng.randint(0, 3, 10).astype(np.int32)
    x0 = [np.zeros((3, 3), np.float32), np.zeros(3, np.float32)]
    coach = teacher.Teacher(problem, optimizer_name="nag", learning_rate=0.1)
    one = coach.targets(x0, [(data, labels, [[0, 1]])])
    other = coach.targets(x0, [(data, labels, [[5, 6]])])
    self.assertNotAllClose(one[0][0], other[0][0])
    # First Nesterov step from rest: lr * (1 + momentum) * gradient.
    with tf.Graph().as_default():
      params = [tf.constant(v) for v in x0]
      loss = problem.objective(params, data[[0, 1]], labels[[0, 1]])
      grad = self.evaluate(tf.gradients(loss, params)[0])
    self.assertAllClose(one[0][0][0], 0.1 * 1.9 * grad, rtol=1e-5)

  def test_unknown_teachers_are_rejected(self):
    with self.assertRaisesRegex(ValueError, "unknown teacher"):
      teacher.Teacher(self.problem, optimizer_name="lbfgs")


if __name__ == "__main__":
  tf.test.main()
