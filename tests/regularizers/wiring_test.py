"""The regulariser inside meta-training: on, it shapes the meta-gradient;
off, none of its ops run."""

from tests import test_util

import numpy as np
import tensorflow.compat.v1 as tf

from meta_training import unroll as unroll_lib
from optimizer import global_learning_rate
from problems import problem_generator as pg
from regularizers import hessian
from regularizers import registry


def _executed_node_names(sess, fetches, feed):
  options = tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE)
  metadata = tf.RunMetadata()
  sess.run(fetches, feed, options=options, run_metadata=metadata)
  return [node.node_name for device in metadata.step_stats.dev_stats
          for node in device.node_stats]


def _per_tensor_lanczos_trace(num_steps, seed):
  """The hessian-esd regulariser as first written: Lanczos on lists of
  per-tensor vectors (the plain path the flattened one must reproduce)."""

  def regularizer(objective, params):
    grads = hessian.dense_gradients(tf.gradients(objective, params), params)
    v = hessian.normalize(hessian.rademacher_probe(params, seed, True))
    basis = [v]
    hv = hessian.hessian_vector_product(grads, params, v)
    alphas = [hessian.inner(hv, v)]
    w = [h - alphas[0] * vi for h, vi in zip(hv, v)]
    for _ in range(1, num_steps):
      beta = tf.sqrt(hessian.inner(w, w))
      v_prev = basis[-1]
      v = hessian.orthonormalize(w, basis)
      basis.append(v)
      hv = hessian.hessian_vector_product(grads, params, v)
      alphas.append(hessian.inner(hv, v))
      w = [h - alphas[-1] * vi - beta * pi
           for h, vi, pi in zip(hv, v, v_prev)]
    return tf.add_n(alphas)

  return regularizer


class RegularizerWiringTest(tf.test.TestCase):

  def _build(self, option="hessian-esd", alpha=0.1, num_iters=4):
    problem = pg.Quadratic(5, random_seed=0)
    optimizer = global_learning_rate.GlobalLearningRate(0.02)
    out = unroll_lib.build_unroll(optimizer, 
        problem,
        regularizer_fn=registry.make_regularizer(option, num_iters, seed=0),
        meta_regularizer_weight=alpha)
    meta_grad = tf.gradients(out.meta_objective, [optimizer.learning_rate])[0]
    feed = {out.objective_weights: np.ones(3) / 3, out.first_unroll: True,
            out.reset_state: True,
            out.initial_params[0]: np.random.RandomState(1).randn(
                5, 1).astype(np.float32)}
    return problem, out, meta_grad, feed

  def test_switched_off_regulariser_runs_no_ops(self):
    _, out, meta_grad, feed = self._build()
    with self.cached_session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      off = _executed_node_names(sess, [out.meta_objective, meta_grad], feed)
      feed[out.regularizer_on] = True
      on = _executed_node_names(sess, [out.meta_objective, meta_grad], feed)
    # Only the cond's routing (Switch) nodes of the branch run when off;
    # they pass tensors along and compute nothing.
    computed = lambda names: [n for n in names if "regularizer" in n and
                              not n.endswith("Switch")]
    self.assertEmpty(computed(off))
    self.assertGreater(len(computed(on)), 50)

  def _objectives(self, out, meta_grad, feed):
    with tf.Session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      plain = sess.run([out.meta_objective, meta_grad], dict(feed))
      feed = dict(feed)
      feed[out.regularizer_on] = True
      regularized = sess.run([out.meta_objective, meta_grad], feed)
    return plain, regularized

  def test_every_option_adds_a_finite_term_when_switched_on(self):
    for option in registry.NAMES:
      with tf.Graph().as_default():
        _, out, meta_grad, feed = self._build(option)
        plain, regularized = self._objectives(out, meta_grad, feed)
      self.assertGreater(regularized[0], plain[0], option)
      self.assertTrue(np.isfinite(regularized[1]), option)

  def test_esd_term_of_a_quadratic_is_alpha_steps_times_trace(self):
    # With as many Lanczos steps as dimensions, trace(T) = trace(W^T W).
    problem, out, meta_grad, feed = self._build("hessian-esd", num_iters=5)
    plain, regularized = self._objectives(out, meta_grad, feed)
    w = problem.w.astype(np.float64)
    self.assertAllClose(regularized[0] - plain[0],
                        0.1 * 3 * np.trace(w.T.dot(w)), rtol=1e-3)

  def test_a_term_never_switched_on_changes_nothing(self):
    # What metarun relies on to leave it out with --regularize_time=none.
    with tf.Graph().as_default():
      _, out, meta_grad, feed = self._build()
      with_term, _ = self._objectives(out, meta_grad, feed)
    with tf.Graph().as_default():
      problem = pg.Quadratic(5, random_seed=0)
      optimizer = global_learning_rate.GlobalLearningRate(0.02)
      out = unroll_lib.build_unroll(optimizer, problem)
      meta_grad = tf.gradients(out.meta_objective, [optimizer.learning_rate])[0]
      feed = {out.objective_weights: np.ones(3) / 3, out.first_unroll: True,
              out.reset_state: True,
              out.initial_params[0]: np.random.RandomState(1).randn(
                  5, 1).astype(np.float32)}
      without, _ = self._objectives(out, meta_grad, feed)
    self.assertAllEqual(with_term, without)

  def test_jacob_term_reaches_the_meta_gradient(self):
    _, out, meta_grad, feed = self._build("jacob", alpha=10.0)
    with self.cached_session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      plain = sess.run(meta_grad, feed)
      feed[out.regularizer_on] = True
      regularized = sess.run(meta_grad, feed)
    self.assertNotAllClose(plain, regularized)


class FlatLanczosMetaGradientTest(tf.test.TestCase):

  def _meta_gradient(self, regularizer_fn):
    """metaobj and its gradient for a small MLP, regulariser switched on."""
    problem = pg.FullyConnected(4, 3, hidden_sizes=(3,), random_seed=0)
    optimizer = global_learning_rate.GlobalLearningRate(0.1)
    out = unroll_lib.build_unroll(optimizer, problem, regularizer_fn=regularizer_fn,
                          meta_regularizer_weight=0.5)
    meta_grad = tf.gradients(out.meta_objective, [optimizer.learning_rate])[0]
    rng = np.random.RandomState(2)
    feed = {out.objective_weights: np.ones(4) / 4, out.first_unroll: True,
            out.reset_state: True, out.regularizer_on: True,
            out.mini_data: rng.randn(16, 4).astype(np.float32),
            out.mini_labels: rng.randint(0, 3, 16).astype(np.int32),
            out.batches: rng.randint(0, 16, (4, 5)).astype(np.int32)}
    feed.update({x: rng.randn(*x.get_shape().as_list()).astype(np.float32)
                 for x in out.initial_params})
    with tf.Session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      return sess.run([out.meta_objective, meta_grad], feed)

  def test_flat_lanczos_gives_the_per_tensor_meta_gradient(self):
    with tf.Graph().as_default():
      flat = self._meta_gradient(registry.make_regularizer(
          "hessian-esd", 6, seed=3, fixed_probes=True))
    with tf.Graph().as_default():
      per_tensor = self._meta_gradient(_per_tensor_lanczos_trace(6, seed=3))
    self.assertNotEqual(flat[1], 0.)
    self.assertAllClose(flat, per_tensor, rtol=1e-4, atol=1e-6)


if __name__ == "__main__":
  tf.test.main()
