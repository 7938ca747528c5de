"""Teacher trajectories for imitation (multi-task) meta-training.

A `Teacher` runs a hand-designed optimizer (Adam by default, at the
original's learning rate 0.01) on a problem in its own small graph and
session, from given initial parameters and on given mini-batches, and
returns its per-step parameter displacements: the targets the learned
optimizer imitates (new parameters = old - target, the learned optimizers'
convention). The graph is built once; every call only feeds it.
"""

import numpy as np
import tensorflow.compat.v1 as tf

DEFAULT_LEARNING_RATE = 0.01


def _make_optimizer(name, learning_rate):
  if name == "adam":
    return tf.train.AdamOptimizer(learning_rate)
  if name == "rmsprop":
    return tf.train.RMSPropOptimizer(learning_rate)
  if name == "nag":
    return tf.train.MomentumOptimizer(learning_rate, 0.9, use_nesterov=True)
  raise ValueError("unknown teacher optimizer %r; expected adam, rmsprop or "
                   "nag" % (name,))


class Teacher(object):
  """A hand-designed optimizer producing imitation targets for a problem."""

  def __init__(self, problem, optimizer_name="adam",
               learning_rate=DEFAULT_LEARNING_RATE):
    """Builds the teacher's graph.

    Args:
      problem: the `Problem` the learner trains on (its objective is rebuilt
        in the teacher's graph; its data are NumPy arrays).
      optimizer_name: "adam", "rmsprop" or "nag" (Nesterov momentum 0.9).
      learning_rate: the teacher's learning rate.
    """
    self.optimizer_name = optimizer_name
    self.learning_rate = learning_rate
    self.graph = tf.Graph()
    with self.graph.as_default():
      self.params = [tf.Variable(tf.zeros(shape), name="local_var_%d" % i)
                     for i, shape in enumerate(problem.param_shapes)]
      self.data = tf.placeholder_with_default(tf.zeros([0]), None,
                                              name="data")
      self.labels = tf.placeholder_with_default(tf.zeros([0], tf.int32),
                                                None, name="labels")
      self.loss = problem.objective(self.params, self.data, self.labels)
      optimizer = _make_optimizer(optimizer_name, learning_rate)
      self.step = optimizer.minimize(self.loss, var_list=self.params)
      self.reset = tf.global_variables_initializer()
      self.start_values = [tf.placeholder(tf.float32, shape)
                           for shape in problem.param_shapes]
      self.start = tf.group(*[tf.assign(p, v) for p, v in
                              zip(self.params, self.start_values)])
    self.graph.finalize()
    self.sess = tf.Session(graph=self.graph)

  def targets(self, x0, unroll_batches, k=1):
    """Teacher displacements for the unrolls of one meta-iteration.

    The teacher restarts (fresh optimizer state) at `x0`; its state carries
    across the unrolls.

    Args:
      x0: list of initial parameter arrays.
      unroll_batches: per unroll, (mini_data, mini_labels, batches) where
        batches holds k * n_u index lists into the mini-dataset (or None
        entries for data-free problems, then n_u is taken from `lengths`).
      k: teacher steps per learner step.

    Returns:
      Per unroll, a list (one per parameter tensor) of arrays [n_u, *shape]:
      the sum of the k teacher steps' displacements for each learner step.
    """
    self.sess.run(self.reset)
    self.sess.run(self.start, dict(zip(self.start_values, x0)))
    result = []
    for mini_data, mini_labels, batches in unroll_batches:
      if len(batches) % k:
        raise ValueError("teacher batches (%d) must be a multiple of k=%d" %
                         (len(batches), k))
      previous = self.sess.run(self.params)
      steps = [[] for _ in self.params]
      for i in range(len(batches) // k):
        for index in batches[k * i:k * (i + 1)]:
          feed = {}
          if mini_data is not None:
            feed = {self.data: mini_data[index],
                    self.labels: mini_labels[index]}
          self.sess.run(self.step, feed)
        current = self.sess.run(self.params)
        for j, (before, after) in enumerate(zip(previous, current)):
          steps[j].append(before - after)
        previous = current
      result.append([np.stack(s).astype(np.float32) for s in steps])
    return result

  def close(self):
    self.sess.close()
