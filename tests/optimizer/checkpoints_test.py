"""Tests of optimizer.checkpoints: finding, checking, restoring, drop-in use."""

from tests import test_util

import os
import shutil
import warnings

import numpy as np
import tensorflow.compat.v1 as tf

from optimizer import checkpoints
from optimizer import settings
from problems import datasets
from problems import problem_sets


def write_checkpoint(folder, name="model.ckpt-3", seed=0, **overrides):
  """Saves an optimizer with random meta-parameters (plus other variables).

  Returns:
    (path, dict variable name -> saved value of the meta-parameters).
  """
  rng = np.random.RandomState(seed)
  values = settings.complete(overrides)
  with tf.Graph().as_default():
    settings.optimizer_spec(values).build()
    meta = checkpoints.meta_variables()
    tf.train.get_or_create_global_step()
    with tf.variable_scope("parameters"):
      tf.get_variable("user", initializer=np.full(3, 7., np.float32))
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      saved = {}
      for var in meta:
        value = np.asarray(rng.randn(*var.get_shape().as_list()),
                           np.float32)
        var.load(value, sess)
        saved[var.op.name] = value
      os.makedirs(folder, exist_ok=True)
      path = tf.train.Saver().save(sess, os.path.join(folder, name))
  return path, saved


class ResolveCheckpointTest(test_util.TestCase):

  def setUp(self):
    super().setUp()
    self.train_dir = self.make_tempdir()
    self.logdir = os.path.join(self.train_dir, "HierarchicalRNN_GRUCell_20_2")
    self.first, _ = write_checkpoint(self.logdir, "model.ckpt-0")
    self.latest, _ = write_checkpoint(self.logdir, "model.ckpt-12")

  def test_a_prefix_is_returned_as_is(self):
    self.assertEqual(checkpoints.resolve_checkpoint(self.first), self.first)

  def test_a_log_directory_gives_its_latest_checkpoint(self):
    self.assertEqual(checkpoints.resolve_checkpoint(self.logdir), self.latest)

  def test_a_file_name_picks_that_checkpoint(self):
    self.assertEqual(
        checkpoints.resolve_checkpoint(self.logdir, "model.ckpt-0"),
        self.first)

  def test_a_train_dir_with_one_log_directory_is_followed(self):
    self.assertEqual(checkpoints.resolve_checkpoint(self.train_dir),
                     self.latest)

  def test_a_missing_name_lists_what_exists(self):
    with self.assertRaisesRegex(checkpoints.CheckpointError,
                                "no checkpoint model.ckpt-7 .*found: "
                                "model.ckpt-0, model.ckpt-12"):
      checkpoints.resolve_checkpoint(self.logdir, "model.ckpt-7")

  def test_a_missing_path_or_empty_folder_is_an_error(self):
    with self.assertRaisesRegex(checkpoints.CheckpointError,
                                "no such checkpoint or directory"):
      checkpoints.resolve_checkpoint(os.path.join(self.train_dir, "nope"))
    with self.assertRaisesRegex(checkpoints.CheckpointError,
                                "holds no checkpoint"):
      checkpoints.resolve_checkpoint(self.make_tempdir())

  def test_a_train_dir_with_a_file_name_is_followed(self):
    self.assertEqual(
        checkpoints.resolve_checkpoint(self.train_dir, "model.ckpt-0"),
        self.first)

  def test_a_copied_directory_reads_only_its_own_checkpoints(self):
    # State files of older runs hold absolute paths into the original.
    copy = os.path.join(self.make_tempdir(), "copy")
    shutil.copytree(self.logdir, copy)
    with open(os.path.join(copy, "checkpoint"), "w") as f:
      f.write('model_checkpoint_path: "%s"\n' % self.latest)
    shutil.rmtree(self.logdir)
    self.assertEqual(checkpoints.resolve_checkpoint(copy),
                     os.path.join(copy, "model.ckpt-12"))
    with tf.Graph().as_default():
      opt = checkpoints.load_learned_optimizer(copy)
    self.assertEqual(opt.checkpoint_path, os.path.join(copy, "model.ckpt-12"))

  def test_several_log_directories_must_be_named(self):
    write_checkpoint(os.path.join(self.train_dir, "Other_GRUCell_20_2"))
    with self.assertRaisesRegex(checkpoints.CheckpointError,
                                "several log directories"):
      checkpoints.resolve_checkpoint(self.train_dir)


class RestoreTest(test_util.TestCase):

  def setUp(self):
    super().setUp()
    self.path, self.saved = write_checkpoint(self.make_tempdir())

  def _user_model(self):
    """A 2-layer regression model (the user's variables and loss)."""
    rng = np.random.RandomState(5)
    x = tf.constant(rng.randn(16, 4).astype(np.float32))
    y = tf.constant(rng.randn(16, 1).astype(np.float32))
    w1 = tf.get_variable("w1", initializer=np.full((4, 8), .1, np.float32))
    w2 = tf.get_variable("w2", initializer=np.full((8, 1), .1, np.float32))
    loss = tf.reduce_mean(tf.square(tf.matmul(tf.tanh(tf.matmul(x, w1)), w2)
                                    - y))
    return loss, [w1, w2]

  def test_the_users_initializer_loads_the_checkpoint_values(self):
    with tf.Graph().as_default():
      opt = checkpoints.load_learned_optimizer(self.path)
      loss, user_vars = self._user_model()
      train_op = opt.minimize(loss)
      with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for var in checkpoints.meta_variables():
          self.assertAllEqual(sess.run(var), self.saved[var.op.name])
        self.assertAllClose(sess.run(user_vars[0]), np.full((4, 8), .1))
        sess.run(train_op)
        self.assertNotAllClose(sess.run(user_vars[0]), np.full((4, 8), .1))
    self.assertEqual(opt.checkpoint_path, self.path)

  def test_loading_and_restoring_give_the_same_steps(self):
    results = []
    for use_loader in (True, False):
      with tf.Graph().as_default():
        if use_loader:
          opt = checkpoints.load_learned_optimizer(self.path, random_seed=4)
        else:
          opt = settings.optimizer_spec(settings.defaults(),
                                        random_seed=4).build()
        loss, user_vars = self._user_model()
        train_op = opt.minimize(loss)
        with tf.Session() as sess:
          sess.run(tf.global_variables_initializer())
          if not use_loader:
            checkpoints.restore_meta_parameters(sess, self.path)
          for _ in range(3):
            sess.run(train_op)
          results.append(sess.run(user_vars))
    for loaded, restored in zip(*results):
      self.assertAllClose(loaded, restored, rtol=1e-6, atol=1e-7)

  def test_optimizer_kwargs_reach_the_constructor(self):
    results = []
    for kwargs in (None, {"xla_apply": False}):
      with tf.Graph().as_default():
        opt = checkpoints.load_learned_optimizer(
            self.path, random_seed=4, optimizer_kwargs=kwargs)
        self.assertEqual(opt.xla_apply, kwargs is None)
        loss, user_vars = self._user_model()
        train_op = opt.minimize(loss)
        with tf.Session() as sess:
          sess.run(tf.global_variables_initializer())
          for _ in range(3):
            sess.run(train_op)
          results.append(sess.run(user_vars))
    for compiled, plain in zip(*results):
      self.assertAllClose(compiled, plain, rtol=1e-5, atol=1e-6)

  def test_damaged_checkpoints_are_refused_when_loaded(self):
    data = self.path + ".data-00000-of-00001"
    with open(data, "rb") as f:
      content = f.read()
    flipped = bytearray(content)
    flipped[len(content) // 2] ^= 0xff
    for damaged in (content[:len(content) // 3], bytes(flipped)):
      with open(data, "wb") as f:
        f.write(damaged)
      with tf.Graph().as_default():
        with self.assertRaises(checkpoints.CheckpointError) as context:
          checkpoints.load_learned_optimizer(self.path)
      self.assertIn("model.ckpt-3: unreadable checkpoint",
                    str(context.exception))
      self.assertNotIn("\n", str(context.exception))

  def test_bad_optimizer_kwargs_are_refused(self):
    for kwargs, message in (({"xla_apply": "no"},
                             "xla_apply='no': expected a bool"),
                            ({"xla": True}, "takes no argument 'xla'"),
                            ({"packed_apply": True},
                             "takes no argument 'packed_apply'")):
      with tf.Graph().as_default():
        with self.assertRaisesRegex(ValueError, message):
          checkpoints.load_learned_optimizer(self.path,
                                             optimizer_kwargs=kwargs)

  def test_restore_leaves_other_variables_alone(self):
    with tf.Graph().as_default():
      settings.optimizer_spec(settings.defaults()).build()
      with tf.variable_scope("parameters"):
        user = tf.get_variable("user", initializer=np.zeros(3, np.float32))
      with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        checkpoints.restore_meta_parameters(sess, self.path)
        self.assertAllEqual(sess.run(user), np.zeros(3))
        name = "LOL/learning_rate_bias"
        var = [v for v in checkpoints.meta_variables() if v.op.name == name]
        self.assertAllEqual(sess.run(var[0]), self.saved[name])

  def test_another_shape_is_one_clear_error(self):
    with tf.Graph().as_default():
      with self.assertRaisesRegex(
          checkpoints.CheckpointError,
          r"does not fit this optimizer: shape mismatch: LOL/.* is \[.*\] in "
          r"the checkpoint"):
        checkpoints.load_learned_optimizer(self.path, num_gradient_scales=3)

  def test_missing_variables_are_reported(self):
    with tf.Graph().as_default():
      with self.assertRaisesRegex(checkpoints.CheckpointError,
                                  "variable.s. missing"):
        checkpoints.load_learned_optimizer(self.path,
                                           optimizer="CoordinatewiseRNN")

  def test_a_graph_without_optimizer_cannot_be_restored(self):
    with tf.Graph().as_default(), tf.Session() as sess:
      with self.assertRaisesRegex(checkpoints.CheckpointError,
                                  "no learned-optimizer variables"):
        checkpoints.restore_meta_parameters(sess, self.path)

  def test_settings_recorded_next_to_the_checkpoint_are_used(self):
    folder = self.make_tempdir()
    path, _ = write_checkpoint(folder, num_gradient_scales=3)
    settings.save(folder, settings.complete({"num_gradient_scales": 3}))
    with tf.Graph().as_default():
      opt = checkpoints.load_learned_optimizer(path)
      self.assertEqual(opt.num_gradient_scales, 3)

  def test_settings_that_contradict_optimizer_json_give_way_with_a_warning(
      self):
    folder = self.make_tempdir()
    path, _ = write_checkpoint(folder, num_gradient_scales=3)
    recorded = settings.complete({"num_gradient_scales": 3})
    settings.save(folder, recorded)
    file_name = os.path.join(folder, settings.CONFIG_FILE)
    with tf.Graph().as_default():
      # One that changes shapes, one that does not (--max_lr was evaluated
      # silently as given).
      with self.assertWarns(UserWarning) as caught:
        opt = checkpoints.load_learned_optimizer(
            path, num_gradient_scales=4, max_lr=0.1)
      self.assertEqual(opt.num_gradient_scales, 3)
      self.assertEqual(opt.config.init_lr_range, (1e-6, 1e-2))
    self.assertEqual(
        str(caught.warning),
        "max_lr=0.1, num_gradient_scales=4 contradict %s, which records the "
        "settings the checkpoint was trained with; using max_lr=0.01, "
        "num_gradient_scales=3" % file_name)
    # Settings the file agrees with, or that this optimizer does not use,
    # are no contradiction.
    with tf.Graph().as_default():
      with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt = checkpoints.load_learned_optimizer(
            path, optimizer_settings=recorded, crnn_rnn_readout_scale=0.9)
      self.assertEqual(opt.num_gradient_scales, 3)


class PublishedCheckpointTest(test_util.TestCase):
  """The original authors' checkpoint in a drop-in MNIST run."""

  def test_it_trains_the_mnist_relu_mlp_with_falling_loss(self):
    path = test_util.published_checkpoint()
    data_dir = test_util.shared_data_dir()
    if path is None or not os.path.exists(
        os.path.join(data_dir, "mnist", "t10k-images-idx3-ubyte.gz")):
      self.skipTest("../shared/data with the published checkpoint and the "
                    "MNIST test split is not present")
    spec, dataset, batch_size = problem_sets.test_mnist_mlp_relu_problems(
        data_dir=data_dir)[0]
    batches = datasets.batch_indices(dataset.size, 600, batch_size,
                                     rng=np.random.RandomState(0))
    with tf.Graph().as_default():
      opt = checkpoints.load_learned_optimizer(path, random_seed=1)
      problem = spec.build()
      params = problem.init_variables(seed=6)
      data = tf.placeholder(tf.float32, [None, 28, 28, 1])
      labels = tf.placeholder(tf.int32, [None])
      loss = problem.objective(params, data, labels)
      train_op = opt.minimize(loss, var_list=params)
      losses = []
      with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for batch in batches:
          feed = {data: dataset.data[batch], labels: dataset.labels[batch]}
          losses.append(sess.run([loss, train_op], feed_dict=feed)[0])
    first, last = np.mean(losses[:50]), np.mean(losses[-50:])
    self.assertAllClose(losses[0], np.log(10.), atol=0.01)
    # The initial per-coordinate learning rates are random draws in
    # [1e-6, 1e-2] that the optimizer then grows; how soon the loss falls
    # depends on the draw (mean of the last 50 steps, random_seed 0 to 3:
    # 2.08, 0.78, 2.09, 1.80). This draw is seeded.
    self.assertLess(last, 0.5 * first)


if __name__ == "__main__":
  tf.test.main()
