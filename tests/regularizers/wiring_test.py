"""The regulariser inside meta-training: on, it shapes the meta-gradient;
off, none of its ops run."""

from tests import test_util

import numpy as np
import tensorflow.compat.v1 as tf

from optimizer import global_learning_rate
from problems import problem_generator as pg
from regularizers import registry


def _executed_node_names(sess, fetches, feed):
  options = tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE)
  metadata = tf.RunMetadata()
  sess.run(fetches, feed, options=options, run_metadata=metadata)
  return [node.node_name for device in metadata.step_stats.dev_stats
          for node in device.node_stats]


class RegularizerWiringTest(tf.test.TestCase):

  def _build(self, option="hessian-esd", alpha=0.1, num_iters=4):
    problem = pg.Quadratic(5, random_seed=0)
    optimizer = global_learning_rate.GlobalLearningRate(0.02)
    out = optimizer.train(
        problem,
        regularizer_fn=registry.make_regularizer(option, num_iters, seed=0),
        meta_regularizer_weight=alpha)
    meta_grad = tf.gradients(out.metaobj, [optimizer.learning_rate])[0]
    feed = {out.obj_weights: np.ones(3) / 3, out.first_unroll: True,
            out.reset_state: True,
            out.init_tensors[0]: np.random.RandomState(1).randn(
                5, 1).astype(np.float32)}
    return problem, out, meta_grad, feed

  def test_switched_off_regulariser_runs_no_ops(self):
    _, out, meta_grad, feed = self._build()
    with self.cached_session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      off = _executed_node_names(sess, [out.metaobj, meta_grad], feed)
      feed[out.jacob_switch] = True
      on = _executed_node_names(sess, [out.metaobj, meta_grad], feed)
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
      plain = sess.run([out.metaobj, meta_grad], dict(feed))
      feed = dict(feed)
      feed[out.jacob_switch] = True
      regularized = sess.run([out.metaobj, meta_grad], feed)
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

  def test_jacob_term_reaches_the_meta_gradient(self):
    _, out, meta_grad, feed = self._build("jacob", alpha=10.0)
    with self.cached_session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      plain = sess.run(meta_grad, feed)
      feed[out.jacob_switch] = True
      regularized = sess.run(meta_grad, feed)
    self.assertNotAllClose(plain, regularized)


if __name__ == "__main__":
  tf.test.main()
