"""Every problem of every registered set builds and has finite values.

Real data sets are replaced by small generated files in the standard layouts;
one held-out test reads the real Fashion-MNIST where it is installed.
"""

from tests import test_util

import inspect
import os
import socket
import subprocess
import sys
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow.compat.v1 as tf

from problems import data_files
from problems import datasets
from problems import problem_generator as pg
from problems import problem_sets

_ALL_SETS = (list(problem_sets.TRAINING_SETS.items()) +
             [("eval_" + k, v) for k, v in
              problem_sets.EVALUATION_SETS.items()] +
             list(problem_sets.OTHER_SETS.items()))


def _worker_server():
  """An in-process server for a one-task "worker" job on a free local port."""
  with socket.socket() as probe:
    probe.bind(("localhost", 0))
    port = probe.getsockname()[1]
  cluster = tf.train.ClusterSpec({"worker": ["localhost:%d" % port]})
  return tf.train.Server(cluster, job_name="worker", task_index=0)


def _entries(problem_set, data_dir):
  """(spec, dataset, batch_size) triples; test_problems' 5-tuples trimmed."""
  return [entry[:3] for entry in problem_set.problems(data_dir)]


class _ProblemChecks(object):
  """Builds a problem and checks its objective and gradients on one batch."""

  def _check_problem(self, spec, dataset, batch_size, where, target=""):
    with tf.Graph().as_default():
      problem = spec.build()
      self.assertIsInstance(problem, pg.Problem, where)
      if problem.param_shapes:
        with tf.Session() as sess:
          values = sess.run(problem.init_tensors(seed=1))
        params = [tf.placeholder(tf.float32, shape)
                  for shape in problem.param_shapes]
        feed = dict(zip(params, values))
        shapes = problem.param_shapes
      else:  # ModelAdapter: the parameters are the model's own variables.
        params = problem.init_tensors()
        feed = {}
        shapes = [tuple(p.get_shape().as_list()) for p in params]
      data = labels = None
      if dataset is not None:
        index = dataset.batch_indices(1, batch_size,
                                      rng=np.random.RandomState(0))[0]
        data = tf.constant(dataset.data[index])
        labels = tf.constant(dataset.labels[index])
      objective = problem.objective(params, data, labels)
      grads = [tf.convert_to_tensor(g)
               for g in problem.gradients(objective, params)]
      with tf.Session(target) as sess:
        problem.init_fn(sess)
        value, grad_values = sess.run([objective, grads], feed)
    self.assertEqual(np.shape(value), (), where)
    self.assertTrue(np.isfinite(value), "%s: objective %s" % (where, value))
    self.assertLen(grad_values, len(shapes))
    for shape, grad in zip(shapes, grad_values):
      self.assertEqual(grad.shape, tuple(shape), where)
      self.assertTrue(np.all(np.isfinite(grad)), "%s: gradient" % where)


class EveryProblemBuildsTest(_ProblemChecks, tf.test.TestCase,
                             parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._tmp = tempfile.TemporaryDirectory()
    cls.data_dir = test_util.make_fake_data_dir(cls._tmp.name)

  @classmethod
  def tearDownClass(cls):
    cls._tmp.cleanup()
    super().tearDownClass()

  @parameterized.named_parameters(*_ALL_SETS)
  def test_set_builds_with_finite_objective_and_gradients(self, problem_set):
    entries = _entries(problem_set, self.data_dir)
    self.assertNotEmpty(entries)
    # The worker adapter places its model on "/job:worker": give it one.
    target = ""
    if problem_set.build is problem_sets.adapter_rosenbrock_worker:
      self.server = _worker_server()
      target = self.server.target
    for i, (spec, dataset, batch_size) in enumerate(entries):
      self.assertEqual(dataset is None, batch_size is None)
      where = "%s[%d] %s" % (problem_set.name, i, spec.callable.__name__)
      self._check_problem(spec, dataset, batch_size, where, target)


class RegistryTest(tf.test.TestCase):

  def test_flag_names_follow_the_originals_pattern(self):
    self.assertEqual(problem_sets.flag_name("mnist_mlp"),
                     "include_mnist_mlp_problems")
    self.assertIs(problem_sets.TRAINING_SETS["noisy_quadratic"].build,
                  problem_sets.quadratic_problems_noisy)
    self.assertIs(problem_sets.EVALUATION_SETS["mnist_mlp"].build,
                  problem_sets.test_mnist_mlp_problems)
    self.assertLen(problem_sets.TRAINING_SETS, 30)
    self.assertLen(problem_sets.EVALUATION_SETS, 6)

  def test_sets_are_appended_in_registry_order(self):
    problems = problem_sets.training_problems(["rastrigin", "quadratic",
                                               "lasso"])
    self.assertEqual([p[0].callable for p in problems],
                     [pg.Quadratic] * 4 + [pg.Lasso, pg.Rastrigin])

  def test_sparse_gradient_mlps_come_only_with_random_mlps(self):
    alone = problem_sets.training_problems(["sparse_gradient"])
    self.assertLen(alone, 6)
    both = problem_sets.training_problems(
        ["sparse_gradient", "fully_connected_random_2_class"])
    self.assertLen(both, 12 + 6 + 3)
    inner = [p[0].args[0].callable for p in both[18:]]
    self.assertEqual(inner, [pg.FullyConnected] * 3)
    self.assertTrue(all(p[0].callable is pg.SparseProblem
                        for p in both[12:]))

  def test_unknown_set_names_are_rejected(self):
    with self.assertRaisesRegex(ValueError, "unknown problem set.*nope"):
      problem_sets.training_problems(["quadratic", "nope"])
    with self.assertRaisesRegex(ValueError, "unknown problem set"):
      problem_sets.evaluation_problems(["lasso"])

  def test_evaluation_sets_read_the_test_split(self):
    with tempfile.TemporaryDirectory() as tmp:
      written = test_util.write_fake_mnist(os.path.join(tmp, "mnist"),
                                           num_train=5004, num_test=7)
      problems = problem_sets.evaluation_problems(["mnist_mlp"], data_dir=tmp)
      training = problem_sets.training_problems(["mnist_mlp"], data_dir=tmp)
    self.assertEqual(problems[0][1].size, 7)
    self.assertAllEqual(problems[0][1].labels, written["t10k"][1])
    self.assertEqual(training[0][1].size, 4)
    self.assertEqual(problems[0][2], 128)

  def test_data_free_sets_use_no_dataset(self):
    for spec, dataset, batch_size in problem_sets.matmul_problems():
      self.assertIsNone(dataset)
      self.assertIsNone(batch_size)
      self.assertIs(spec.callable, pg.MatMulAlgorithm)
    self.assertEqual(datasets.EMPTY_DATASET.size, 0)

  def test_sum_of_quadratics_data_are_symmetric(self):
    for _, dataset, _ in problem_sets.sum_of_quadratics_problems():
      self.assertAllClose(dataset.data.sum(axis=0),
                          np.zeros(dataset.data.shape[1]), atol=1e-3)

  def test_importing_problem_sets_needs_no_flags(self):
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    result = subprocess.run(
        [sys.executable, "-c",
         "from problems import problem_sets; "
         "print(len(problem_sets.TRAINING_SETS))"],
        cwd=root, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=root))
    self.assertEqual(result.returncode, 0, result.stderr[-2000:])
    self.assertEqual(result.stdout.strip().splitlines()[-1], "30")


_EVERY_ENTRY = [
    ("%s_%s" % (kind, stem), entry)
    for kind, registry in (("training", problem_sets.TRAINING_SETS),
                           ("evaluation", problem_sets.EVALUATION_SETS),
                           ("heldout", problem_sets.HELDOUT_SETS),
                           ("other", problem_sets.OTHER_SETS))
    for stem, entry in registry.items()]


def _data_dir_with(root, names):
  """A data folder holding fake copies of the named real data sets only."""
  for name in names:
    if name == problem_sets.CIFAR10:
      test_util.write_fake_cifar10(os.path.join(root,
                                                data_files.CIFAR10_FOLDER))
    else:
      test_util.write_fake_mnist(os.path.join(root, name.replace("_", "-")))
  return root


def _is_conv_net(spec):
  return isinstance(spec.callable, type) and issubclass(
      spec.callable, (pg.ConvNet, pg.PooledConvNet))


class FactsTest(tf.test.TestCase, parameterized.TestCase):
  """Each registry entry's facts are those of the problems it returns."""

  @parameterized.named_parameters(*_EVERY_ENTRY)
  def test_the_facts_are_those_of_the_set_s_problems(self, problem_set):
    self.assertEqual(
        bool(problem_set.data),
        "data_dir" in inspect.signature(problem_set.build).parameters)
    self.assertContainsSubset(problem_set.data, problem_sets.DATA_SETS)
    with tempfile.TemporaryDirectory() as tmp:
      # The data sets it names are all it reads: no other is there.
      entries = problem_set.problems(_data_dir_with(tmp, problem_set.data))
    self.assertNotEmpty(entries)
    self.assertEqual([isinstance(e[1], datasets.Splits) for e in entries],
                     [problem_set.heldout] * len(entries))
    conv = [_is_conv_net(e[0]) for e in entries]
    self.assertEqual(problem_set.conv, all(conv))

  def test_every_set_an_evaluation_selects_is_all_conv_or_all_not(self):
    with tempfile.TemporaryDirectory() as tmp:
      data_dir = _data_dir_with(tmp, problem_sets.DATA_SETS)
      for stem, entry in problem_sets.EVALUATION_CHOICES.items():
        conv = {_is_conv_net(e[0]) for e in entry.problems(data_dir)}
        self.assertEqual(conv, {entry.conv}, stem)

  def test_the_sets_facts_as_documented(self):
    choices = problem_sets.EVALUATION_CHOICES
    self.assertEqual([s for s, e in choices.items() if e.conv], [
        "mnist_conv", "mnist_conv_orig", "cifar10_conv",
        "fashion_mnist_conv_heldout", "mnist_conv_heldout"])
    self.assertEqual([s for s, e in choices.items() if e.heldout],
                     list(problem_sets.HELDOUT_SETS))
    self.assertEqual(choices["cifar10_conv"].data, ("cifar10",))
    self.assertEqual(choices["fashion_mnist_mlp_heldout"].data,
                     ("fashion_mnist",))
    self.assertEqual(choices["mnist_mlp_relu"].data, ("mnist",))
    self.assertEqual(choices["quadratic"].data, ())
    self.assertEqual(dict(problem_sets.VALIDATION_DATA), {
        "mnist_conv": datasets.mnist_validation,
        "mnist_mlp": datasets.mnist_validation})

  def test_an_evaluation_selects_the_evaluation_copy_then_the_others(self):
    choices = problem_sets.EVALUATION_CHOICES
    self.assertEqual(
        list(choices),
        list(problem_sets.EVALUATION_SETS) +
        [s for s in problem_sets.TRAINING_SETS
         if s not in problem_sets.EVALUATION_SETS] +
        list(problem_sets.HELDOUT_SETS))
    self.assertIs(choices["mnist_conv"].build,
                  problem_sets.test_mnist_conv_problems)
    self.assertIs(choices["lasso"].build, problem_sets.lasso_problems)
    self.assertEqual(choices["mnist_mlp_relu"].name,
                     "test_mnist_mlp_relu_problems")


def _logits_at_zero_weights(spec, output_bias):
  """The built network's logits with all parameters zero but the last bias."""
  with tf.Graph().as_default():
    problem = spec.build()
    values = [np.zeros(shape, np.float32) for shape in problem.param_shapes]
    values[-1] = np.full(problem.param_shapes[-1], output_bias, np.float32)
    logits = problem.inference([tf.constant(v) for v in values],
                               tf.zeros([2, 28, 28, 1]))
    with tf.Session() as sess:
      return sess.run(logits)


class HeldoutSetsTest(_ProblemChecks, tf.test.TestCase,
                      parameterized.TestCase):
  """The held-out sets on fake MNIST and Fashion-MNIST files."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._tmp = tempfile.TemporaryDirectory()
    cls.data_dir = cls._tmp.name
    cls.written = {
        name: test_util.write_fake_mnist(os.path.join(cls.data_dir, name),
                                         num_train=5010, num_test=30, seed=i)
        for i, name in enumerate(("mnist", "fashion-mnist"))}

  @classmethod
  def tearDownClass(cls):
    cls._tmp.cleanup()
    super().tearDownClass()

  @parameterized.named_parameters(*problem_sets.HELDOUT_SETS.items())
  def test_set_returns_splits_batch_128_and_builds(self, problem_set):
    entries = problem_set.problems(self.data_dir)
    self.assertLen(entries, 1)
    spec, splits, batch_size = entries[0]
    self.assertIsInstance(splits, datasets.Splits)
    self.assertEqual(batch_size, 128)
    self.assertEqual([d.size for d in splits], [10, 5000, 30])
    for name, dataset in zip(splits._fields, splits):
      self._check_problem(spec, dataset, batch_size,
                          "%s on %s" % (problem_set.name, name))

  @parameterized.parameters("mnist", "fashion_mnist")
  def test_splits_come_from_the_data_dirs_files(self, data_set):
    folder = data_set.replace("_", "-")
    [(_, splits, _)] = problem_sets.heldout_problems(
        [data_set + "_mlp_heldout"], data_dir=self.data_dir)
    train_labels = self.written[folder]["train"][1]
    self.assertAllEqual(splits.train.labels, train_labels[5000:])
    self.assertAllEqual(splits.validation.labels, train_labels[:5000])
    self.assertAllEqual(splits.test.labels, self.written[folder]["t10k"][1])

  def test_conv_sets_have_linear_logits_and_the_evaluation_one_does_not(self):
    for stem in ("fashion_mnist_conv_heldout", "mnist_conv_heldout"):
      [(spec, _, _)] = problem_sets.heldout_problems([stem], self.data_dir)
      self.assertIs(spec.callable, pg.PooledConvNet)
      self.assertAllClose(_logits_at_zero_weights(spec, -1.0),
                          -np.ones((2, 10)))
    [(spec, _, _)] = problem_sets.evaluation_problems(["mnist_conv"],
                                                      self.data_dir)
    self.assertAllClose(_logits_at_zero_weights(spec, -1.0),
                        np.zeros((2, 10)))

  def test_networks_are_the_evaluation_sets_networks(self):
    pairs = [("mlp", "mlp"), ("mlp_relu", "mlp_relu"),
             ("mlp_deeper", "mlp_deeper"), ("conv", "conv")]
    for heldout, evaluation in pairs:
      [(eval_spec, _, _)] = problem_sets.evaluation_problems(
          ["mnist_" + evaluation], self.data_dir)
      for data_set in ("mnist", "fashion_mnist"):
        [(spec, _, _)] = problem_sets.heldout_problems(
            ["%s_%s_heldout" % (data_set, heldout)], self.data_dir)
        expected_kwargs = dict(eval_spec.kwargs)
        if heldout == "conv":
          expected_kwargs["logits_activation"] = False
        self.assertIs(spec.callable, eval_spec.callable)
        self.assertEqual(spec.args, eval_spec.args)
        self.assertEqual(spec.kwargs, expected_kwargs)

  def test_evaluation_conv_spec_is_unchanged(self):
    [(spec, _, _)] = problem_sets.evaluation_problems(["mnist_conv"],
                                                      self.data_dir)
    self.assertEqual(spec.args,
                     ((1, 28, 28), 10, [(3, 3, 16, 1), (5, 5, 32, 1)]))
    self.assertEqual(spec.kwargs, {"activation": tf.nn.relu,
                                   "affine_size": 512})

  def test_sets_are_appended_in_registry_order(self):
    problems = problem_sets.heldout_problems(
        ["mnist_conv_heldout", "mnist_mlp_heldout"], data_dir=self.data_dir)
    self.assertEqual([p[0].callable for p in problems],
                     [pg.FullyConnected, pg.PooledConvNet])

  def test_unknown_and_non_heldout_stems_are_rejected(self):
    with self.assertRaisesRegex(ValueError, "unknown problem set.*mnist_mlp"):
      problem_sets.heldout_problems(["mnist_mlp"], data_dir=self.data_dir)

  def test_real_fashion_mnist_splits_have_55000_5000_10000_images(self):
    if not os.path.isfile(os.path.join(data_files.FASHION_MNIST_SYSTEM_DIR,
                                       "train-images-idx3-ubyte.gz")):
      self.skipTest("dataset-fashion-mnist is not installed")
    with tempfile.TemporaryDirectory() as empty:
      [(_, splits, batch_size)] = problem_sets.heldout_problems(
          ["fashion_mnist_mlp_heldout"], data_dir=empty)
    self.assertEqual([d.size for d in splits], [55000, 5000, 10000])
    self.assertEqual(batch_size, 128)


class HeldoutRegistryTest(tf.test.TestCase):

  def test_registry_lists_the_eight_heldout_sets(self):
    self.assertEqual(list(problem_sets.HELDOUT_SETS), [
        "fashion_mnist_mlp_heldout", "fashion_mnist_mlp_relu_heldout",
        "fashion_mnist_mlp_deeper_heldout", "fashion_mnist_conv_heldout",
        "mnist_mlp_heldout", "mnist_mlp_relu_heldout",
        "mnist_mlp_deeper_heldout", "mnist_conv_heldout"])

  def test_stems_and_flags_collide_with_no_other_registry(self):
    others = (set(problem_sets.TRAINING_SETS) |
              set(problem_sets.EVALUATION_SETS) |
              set(problem_sets.OTHER_SETS))
    self.assertEmpty(set(problem_sets.HELDOUT_SETS) & others)
    other_flags = {problem_sets.flag_name(s) for s in others}
    for stem in problem_sets.HELDOUT_SETS:
      self.assertNotIn(problem_sets.flag_name(stem), other_flags)
    self.assertEqual(problem_sets.flag_name("mnist_conv_heldout"),
                     "include_mnist_conv_heldout_problems")

  def test_every_set_function_takes_data_dir(self):
    for problem_set in problem_sets.HELDOUT_SETS.values():
      self.assertIn("data_dir",
                    inspect.signature(problem_set.build).parameters)


if __name__ == "__main__":
  tf.test.main()
