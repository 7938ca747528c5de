"""Problem sets: lists of (spec, dataset, batch_size) for training and testing.

Every set function returns a list of 3-tuples: a `Spec` of the problem, a
`datasets.Dataset` (a `datasets.Splits` in HELDOUT_SETS) or None, and the
mini-batch size or None. Data sets are loaded (or generated) when the set
function is called. Functions that read real data take `data_dir` (see
`data_files.resolve_data_dir`).

Three registries map the stem of the entry points' `--include_<stem>_problems`
flags (`flag_name(stem)`) to `ProblemSet` entries, each a set function with
the facts the programs read (which real data it needs, held-out splits or
not, conv nets or not, a validation hold-out for meta-training):
  TRAINING_SETS for metarun.py (the meta-training copy's sets);
  EVALUATION_SETS for metatest.py (the evaluation copy's test-split sets;
    the same stems as their training counterparts, as in the original);
  HELDOUT_SETS, added here, for held-out evaluation: the evaluation networks
    on Fashion-MNIST and MNIST with a `datasets.Splits` in place of the data
    set. The optimizee trains on `splits.train` only; `splits.validation`
    and `splits.test` are never trained on and measure generalisation. The
    conv net has linear logits (`PooledConvNet(logits_activation=False)`).
    Its stems (all ending in "_heldout") occur in no other registry.
The first two keep the original's order. EVALUATION_CHOICES is every set
metatest.py can select. Use `training_problems`, `evaluation_problems` or
`heldout_problems` to assemble a run's list.
"""

import collections
import dataclasses
from typing import Any, Callable, Optional, Tuple

import numpy as np
import tensorflow.compat.v1 as tf

from problems import datasets
from problems import model_adapter
from problems import problem_generator as pg
from problems import problem_spec

_Spec = problem_spec.Spec

_TEST_FUNCTIONS = (pg.Ackley, pg.Beale, pg.Booth, pg.Branin, pg.LogSumExp,
                   pg.Matyas, pg.Michalewicz, pg.Rosenbrock, pg.StyblinskiTang)


def _data_free(specs):
  return [(spec, None, None) for spec in specs]


def _quadratics(sizes, kwargs=None):
  return [_Spec(pg.Quadratic, (n,), dict(kwargs or {})) for n in sizes]


def _mnist_mlp_spec(hidden_sizes=(20,), activation=tf.nn.sigmoid):
  """A FullyConnected for 28x28 images and 10 classes (default 784-20-10)."""
  return _Spec(pg.FullyConnected, (784, 10),
               {"hidden_sizes": hidden_sizes, "activation": activation})


def _mnist_mlp_relu_spec():
  return _mnist_mlp_spec(activation=tf.nn.relu)


def _mnist_mlp_deeper_spec():
  return _mnist_mlp_spec(hidden_sizes=(20, 20))


def _mnist_pooled_conv_spec(logits_activation=True):
  """The evaluation copy's PooledConvNet for 28x28 grey images.

  Args:
    logits_activation: False for linear logits (the held-out sets); the
      default leaves the keyword out, so the spec is the original's.
  """
  kwargs = {"activation": tf.nn.relu, "affine_size": 512}
  if not logits_activation:
    kwargs["logits_activation"] = False
  return _Spec(pg.PooledConvNet,
               ((1, 28, 28), 10, [(3, 3, 16, 1), (5, 5, 32, 1)]), kwargs)


def mnist_mlp_problems(data_dir=None):
  """The 784-20-10 sigmoid MLP on the MNIST training split, batch 128."""
  return [(_mnist_mlp_spec(), datasets.mnist(train=True, data_dir=data_dir),
           128)]


def mnist_conv_problems(data_dir=None):
  """ConvNet with 3x3x8 and 5x5x8 ReLU convolutions on MNIST, batch 64."""
  return [(_Spec(pg.ConvNet, ((1, 28, 28), 10, [(3, 3, 8), (5, 5, 8)]),
                 {"activation": tf.nn.relu}),
           datasets.mnist(train=True, data_dir=data_dir), 64)]


def cifar10_conv_problems(data_dir=None):
  """ConvNet with 3x3x16 and 5x5x16 ReLU convolutions on CIFAR-10, batch 64."""
  return [(_Spec(pg.ConvNet, ((3, 32, 32), 10, [(3, 3, 16), (5, 5, 16)]),
                 {"activation": tf.nn.relu}),
           datasets.cifar10(train=True, data_dir=data_dir), 64)]


def quadratic_problems():
  return _data_free(_quadratics([20, 25, 50, 100]))


def quadratic_problems_noisy():
  """Noisy quadratics; the 25-dim one is noise-free, as in the original."""
  noise = [(20, 0.5), (25, 0.0), (50, 1.0), (100, 2.0)]
  return _data_free([_Spec(pg.Quadratic, (n,), {"noise_stdev": s})
                     for n, s in noise])


def quadratic_problems_large():
  return _data_free(_quadratics([784, 1024, 2048]))


def _bowls(noise_stdev):
  return _data_free(
      [_Spec(pg.Bowl, (c,), {"noise_stdev": noise_stdev})
       for c in (0.1, 1.0, 5.0)] +
      [_Spec(pg.Bowl, (5.0,), {"noise_stdev": noise_stdev,
                               "angle": np.pi / 4.})])


def bowl_problems():
  return _bowls(0.0)


def bowl_problems_noisy():
  return _bowls(0.1)


def sparse_softmax_2_class_sparse_problems():
  """Embedding-sum classifier on noisy parity; 5 samples, batch 23 (sic)."""
  return [(_Spec(pg.SparseSoftmaxRegression, (5, 2), {"noise_stdev": 0.0}),
           datasets.noisy_parity_class(5, random_seed=123), 23)]


def one_hot_sparse_softmax_2_class_sparse_problems():
  return [(_Spec(pg.OneHotSparseSoftmaxRegression, (5, 2),
                 {"noise_stdev": 0.0}),
           datasets.noisy_parity_class(5, random_seed=123), 23)]


_SOFTMAX_2_CLASS = [(10, 2.0, 100), (100, 1.0, 50), (200, 1.5, 20),
                    (256, 1.5, 100)]


def softmax_2_class_problems():
  return [(_Spec(pg.SoftmaxRegression, (n, 2), {}),
           datasets.random(n, 1000, random_seed=123, sep=sep), batch)
          for n, sep, batch in _SOFTMAX_2_CLASS]


def softmax_2_class_problems_noisy():
  noise = [0.5, 0.1, 0.1, 0.5]
  return [(_Spec(pg.SoftmaxRegression, (n, 2), {"noise_stdev": s}),
           datasets.random(n, 1000, random_seed=123, sep=sep), batch)
          for (n, sep, batch), s in zip(_SOFTMAX_2_CLASS, noise)]


def optimization_test_problems():
  return _data_free([_Spec(f, (), {}) for f in _TEST_FUNCTIONS])


def optimization_test_problems_noisy():
  return _data_free([_Spec(f, (), {"noise_stdev": 1.})
                     for f in _TEST_FUNCTIONS])


_RANDOM_MLPS = [(8, (8, 5), 10), (12, (8, 5, 3), 200), (5, (4, 4, 4, 4), 100),
                (11, (4, 5, 6), 64), (9, (8,), 128), (7, (8, 5), 16),
                (8, (32, 64), 10), (12, (16, 8, 3), 200),
                (5, (8, 8, 8, 8), 100), (11, (10, 12, 12), 64),
                (9, (32,), 128), (7, (32, 64), 16)]


def _random_mlp_entry(n_features, hidden_sizes, batch):
  spec = _Spec(pg.FullyConnected, (n_features, 2),
               {"hidden_sizes": hidden_sizes, "activation": tf.nn.sigmoid})
  return spec, datasets.random_mlp(n_features, 1000), batch


def fully_connected_random_2_class_problems():
  return [_random_mlp_entry(*entry) for entry in _RANDOM_MLPS]


def matmul_problems():
  return (pg.matmul_problem_sequence(2, 5, 8) +
          pg.matmul_problem_sequence(3, 19, 24))


def _log_and_sparse_inner_specs():
  return _quadratics([20, 50, 100]) + [_Spec(pg.Bowl, (c,), {})
                                       for c in (0.1, 1.0, 5.0)]


def log_objective_problems():
  return _data_free([_Spec(pg.LogObjective, [spec], {})
                     for spec in _log_and_sparse_inner_specs()])


def sparse_gradient_problems():
  return _data_free([_Spec(pg.SparseProblem, [spec], {})
                     for spec in _log_and_sparse_inner_specs()])


def sparse_gradient_problems_mlp():
  entries = []
  for n_features, hidden_sizes, batch in _RANDOM_MLPS[:3]:
    spec, data, batch = _random_mlp_entry(n_features, hidden_sizes, batch)
    entries.append((_Spec(pg.SparseProblem, [spec], {}), data, batch))
  return entries


def rescale_problems():
  norms = [(2.5, 0.123), (1.5, 8), (2., 50), (3., 200), (1., 1000)]
  specs = [_Spec(pg.Rescale, [_Spec(pg.Norm, (18,), {"norm_power": p})],
                 {"scale": s}) for p, s in norms]
  quads = [(20, 0.1), (25, 10.), (50, 350.), (100, 132.)]
  specs += [_Spec(pg.Rescale, [_Spec(pg.Quadratic, (n,), {})], {"scale": s})
            for n, s in quads]
  return _data_free(specs)


def norm_problems():
  return _data_free([_Spec(pg.Norm, (n,), {"norm_power": p})
                     for n, p in [(27, 1.), (25, 2.), (22, 3.)]])


def norm_problems_noisy():
  return _data_free([_Spec(pg.Norm, (n,), {"noise_stdev": .1, "norm_power": p})
                     for n, p in [(19, 1.), (26, 2.), (23, 3.)]])


def _test_function_specs():
  order = (pg.Rosenbrock, pg.LogSumExp, pg.Ackley, pg.Beale, pg.Booth,
           pg.StyblinskiTang, pg.Matyas, pg.Branin, pg.Michalewicz)
  return [_Spec(f, (), {}) for f in order]


def sum_problems():
  """Six SumTasks of quadratics, a norm and the 2-D test functions."""
  functions = _test_function_specs()
  tasks = [
      _quadratics([11, 3, 9, 7, 5, 13, 12]),
      [_Spec(pg.Norm, (18,), {"norm_power": 3}), _Spec(pg.Quadratic, (25,), {}),
       _Spec(pg.Rosenbrock, (), {})],
      functions,
      functions + _quadratics([5, 13]),
      _quadratics([11, 3]),
      functions[:3],
  ]
  return _data_free([_Spec(pg.SumTask, [task], {}) for task in tasks])


def sum_problems_noisy():
  """Two SumTasks with noisy inner specs (the inner noise has no effect)."""
  tasks = [
      _quadratics([11, 3, 9, 7, 5, 13, 12], {"noise_stdev": 0.1}),
      _test_function_specs() + [_Spec(pg.Quadratic, (5,), {}),
                                _Spec(pg.Quadratic, (13,),
                                      {"noise_stdev": 0.5})],
  ]
  return _data_free([_Spec(pg.SumTask, [task], {}) for task in tasks])


_BINARY_DATA = [(20, 1000, 100), (12, 200, 10), (56, 5000, 100),
                (64, 1000, 50), (13, 10000, 50), (20, 1000, 128),
                (12, 300, 16), (56, 5000, 128), (64, 1000, 64),
                (13, 10000, 32)]
_SYMMETRIC_DATA = [(20, 1000, 100), (12, 100, 10), (56, 5000, 100),
                   (64, 1000, 50), (13, 10000, 50), (20, 1000, 128),
                   (12, 100, 16), (56, 5000, 128), (64, 1000, 64),
                   (13, 10000, 32)]


def dependency_chain_problems():
  return [(_Spec(pg.DependencyChain, (n,), {}),
           datasets.random_binary(n, samples), batch)
          for n, samples, batch in _BINARY_DATA]


def outward_snake_problems():
  return [(_Spec(pg.OutwardSnake, (n,), {}),
           datasets.random_binary(n, samples), batch)
          for n, samples, batch in _BINARY_DATA]


def min_max_well_problems():
  return _data_free([_Spec(pg.MinMaxWell, (n,), {})
                     for n in (20, 12, 56, 64, 13)])


def sum_of_quadratics_problems():
  return [(_Spec(pg.SumOfQuadratics, (n,), {}),
           datasets.random_symmetric(n, samples), batch)
          for n, samples, batch in _SYMMETRIC_DATA]


def projection_quadratic_problems():
  return [(_Spec(pg.ProjectionQuadratic, (n,), {}),
           datasets.random_symmetric(n, samples), batch)
          for n, samples, batch in _SYMMETRIC_DATA]


def lasso_problems():
  return _data_free([_Spec(pg.Lasso, (20,), {})])


def rastrigin_problems():
  return _data_free([_Spec(pg.Rastrigin, (2,), {})])


def adapter_rosenbrock_local():
  return _data_free([_Spec(model_adapter.ModelAdapter,
                           (pg.make_rosenbrock_loss_and_init,), {})])


def adapter_rosenbrock_worker():
  """The Rosenbrock adapter placed on "/job:worker" (the original passed the
  device to ModelAdapter, which rejected it; here it reaches the loss)."""

  def make_on_worker():
    return pg.make_rosenbrock_loss_and_init(device="/job:worker")

  return _data_free([_Spec(model_adapter.ModelAdapter, (make_on_worker,), {})])


def _mlp_scaled_init(shapes, rng=None):
  """He-scaled weights and 0.1-scaled biases for [W, b, W, b, ...] shapes."""
  rng = np.random if rng is None else rng
  arrays = []
  for shape in shapes:
    scale = np.sqrt(2.0 / shape[0]) if len(shape) == 2 else 0.1
    arrays.append(rng.randn(*shape) * scale)
  return arrays


def _test_problem_mlp_scaled_init_small():
  return _mlp_scaled_init([(10, 32), (32,), (32, 64), (64,), (64, 2), (2,)])


def _test_problem_mlp_scaled_init_large():
  return _mlp_scaled_init([(20, 32), (32,), (32, 64), (64,), (64, 10), (10,)])


def _test_problem_mlp_scaled_init_mnist():
  return _mlp_scaled_init([(784, 64), (64,), (64, 10), (10,)])


def test_problems(data_dir=None):
  """Named problems with fixed initializations, as 5-tuples.

  Returns:
    A list of (spec, dataset, batch_size, name, init) where init is an int
    seed for `init_tensors`, a list of initial arrays, or None.
  """
  quad = (20,)
  softmax_data = datasets.random(10, 10000, random_seed=1234)
  mnist = datasets.mnist(train=True, data_dir=data_dir)
  conv = ((1, 28, 28), 10, [(3, 3, 8), (5, 5, 8)])
  return [
      (_Spec(pg.Quadratic, quad, {"random_seed": 1234}), None, None,
       "quad_problem", 5678),
      (_Spec(pg.Quadratic, quad, {"noise_stdev": 1.0, "random_seed": 1234}),
       None, None, "quad_problem_noise", 5678),
      (_Spec(pg.Rosenbrock, (), {"random_seed": 1234}), None, None,
       "rosenbrock", 5678),
      (_Spec(pg.Rosenbrock, (), {"random_seed": 1234, "noise_stdev": 1.0}),
       None, None, "rosenbrock_noise", 5678),
      (_Spec(pg.SoftmaxRegression, (10, 2), {}), softmax_data, 100,
       "softmax", 5678),
      (_Spec(pg.SoftmaxRegression, (10, 2), {"noise_stdev": 1.0}),
       softmax_data, 100, "softmax_noise", 5678),
      (_Spec(pg.FullyConnected, (10, 2), {}), softmax_data, 100, "mlp_small",
       _test_problem_mlp_scaled_init_small()),
      (_Spec(pg.FullyConnected, (20, 10), {}),
       datasets.random(20, 10000, n_classes=10, random_seed=1234), 100,
       "mlp_large", _test_problem_mlp_scaled_init_large()),
      (_Spec(pg.FullyConnected, (784, 10),
             {"hidden_sizes": (64,), "activation": tf.nn.sigmoid}),
       mnist, 64, "mlp_mnist_sigmoid", _test_problem_mlp_scaled_init_mnist()),
      (_Spec(pg.FullyConnected, (784, 10),
             {"hidden_sizes": (64,), "activation": tf.nn.relu}),
       mnist, 64, "mlp_mnist_relu", _test_problem_mlp_scaled_init_mnist()),
      (_Spec(pg.ConvNet, conv, {"activation": tf.nn.sigmoid}), mnist, 64,
       "convnet_mnist_sigmoid", None),
      (_Spec(pg.ConvNet, conv, {"activation": tf.nn.relu}), mnist, 64,
       "convnet_mnist_relu", None),
  ]


def _on_mnist_test_split(spec, data_dir):
  return [(spec, datasets.mnist(train=False, data_dir=data_dir), 128)]


def test_mnist_mlp_problems(data_dir=None):
  """The training MLP (784-20-10, sigmoid) on the MNIST test split."""
  return _on_mnist_test_split(_mnist_mlp_spec(), data_dir)


def test_mnist_mlp_relu_problems(data_dir=None):
  return _on_mnist_test_split(_mnist_mlp_relu_spec(), data_dir)


def test_mnist_mlp_deeper_problems(data_dir=None):
  return _on_mnist_test_split(_mnist_mlp_deeper_spec(), data_dir)


def test_mnist_conv_problems(data_dir=None):
  """The evaluation copy's pooled ConvNet on the MNIST test split."""
  return _on_mnist_test_split(_mnist_pooled_conv_spec(), data_dir)


def test_mnist_conv_orig_problems(data_dir=None):
  return [(_Spec(pg.ConvNetOrig, ((1, 28, 28), 10, [(3, 3, 8), (5, 5, 8)]),
                 {"activation": tf.nn.relu}),
           datasets.mnist(train=False, data_dir=data_dir), 64)]


def test_cifar10_conv_problems(data_dir=None):
  return [(_Spec(pg.PooledConvNet,
                 ((3, 32, 32), 10, [(3, 3, 16, 2), (5, 5, 32, 2)]),
                 {"activation": tf.nn.relu, "affine_size": 32}),
           datasets.cifar10(train=False, data_dir=data_dir), 128)]


HELDOUT_BATCH_SIZE = 128


def _heldout(spec, load_splits, data_dir):
  return [(spec, load_splits(data_dir=data_dir), HELDOUT_BATCH_SIZE)]


def fashion_mnist_mlp_heldout_problems(data_dir=None):
  """The 784-20-10 sigmoid MLP on Fashion-MNIST's three splits."""
  return _heldout(_mnist_mlp_spec(), datasets.fashion_mnist_splits, data_dir)


def fashion_mnist_mlp_relu_heldout_problems(data_dir=None):
  """The 784-20-10 ReLU MLP on Fashion-MNIST's three splits."""
  return _heldout(_mnist_mlp_relu_spec(), datasets.fashion_mnist_splits,
                  data_dir)


def fashion_mnist_mlp_deeper_heldout_problems(data_dir=None):
  """The 784-20-20-10 sigmoid MLP on Fashion-MNIST's three splits."""
  return _heldout(_mnist_mlp_deeper_spec(), datasets.fashion_mnist_splits,
                  data_dir)


def fashion_mnist_conv_heldout_problems(data_dir=None):
  """The evaluation PooledConvNet, linear logits, on Fashion-MNIST's splits."""
  return _heldout(_mnist_pooled_conv_spec(logits_activation=False),
                  datasets.fashion_mnist_splits, data_dir)


def mnist_mlp_heldout_problems(data_dir=None):
  """The 784-20-10 sigmoid MLP on MNIST's three splits."""
  return _heldout(_mnist_mlp_spec(), datasets.mnist_splits, data_dir)


def mnist_mlp_relu_heldout_problems(data_dir=None):
  """The 784-20-10 ReLU MLP on MNIST's three splits."""
  return _heldout(_mnist_mlp_relu_spec(), datasets.mnist_splits, data_dir)


def mnist_mlp_deeper_heldout_problems(data_dir=None):
  """The 784-20-20-10 sigmoid MLP on MNIST's three splits."""
  return _heldout(_mnist_mlp_deeper_spec(), datasets.mnist_splits, data_dir)


def mnist_conv_heldout_problems(data_dir=None):
  """The evaluation PooledConvNet, linear logits, on MNIST's three splits."""
  return _heldout(_mnist_pooled_conv_spec(logits_activation=False),
                  datasets.mnist_splits, data_dir)


@dataclasses.dataclass(frozen=True)
class ProblemSet:
  """A registry entry: a set function and the facts about its problems.

  Programs read these facts here instead of inferring them from the
  problems: evaluation bounds the measurements of conv nets and records
  held-out splits, the study budgets conv nets' steps apart.

  Attributes:
    build: the set function; it takes `data_dir` when `data` is not empty.
    data: the real data sets it reads (of DATA_SETS), loaded (or downloaded)
      when it is called; () when its data are generated or it has none.
    heldout: each entry holds a `datasets.Splits` in place of the data set
      (train on `train` only; `validation` and `test` are never trained on).
    conv: its networks are convolutional (else MLPs, regressions or
      synthetic functions).
    validation: a training set's loader of its data's validation hold-out
      (for a validation meta-objective), or None.
  """
  build: Callable[..., list]
  data: Tuple[str, ...] = ()
  heldout: bool = False
  conv: bool = False
  validation: Optional[Callable[..., Any]] = None

  @property
  def name(self):
    """The set function's name, e.g. "test_mnist_mlp_relu_problems"."""
    return self.build.__name__

  def problems(self, data_dir=None):
    """The set's list of entries; its real data are loaded now.

    Args:
      data_dir: data folder of the sets that read real data (default: see
        `data_files.resolve_data_dir`).
    """
    if self.data:
      return self.build(data_dir=data_dir)
    return self.build()


# The real data sets a set can need (`ProblemSet.data`).
MNIST = "mnist"
FASHION_MNIST = "fashion_mnist"
CIFAR10 = "cifar10"
DATA_SETS = (MNIST, FASHION_MNIST, CIFAR10)


def _generated(set_fn):
  """The entry of a set whose data are generated (or that has none)."""
  return ProblemSet(set_fn)


def _reads(data, set_fn, **facts):
  """The entry of a set reading the real data set `data`."""
  return ProblemSet(set_fn, data=(data,), **facts)


# Flag stem -> entry, in the order the original's metarun.py appended them
# (--include_<stem>_problems).
TRAINING_SETS = collections.OrderedDict([
    ("sparse_softmax", _generated(sparse_softmax_2_class_sparse_problems)),
    ("mnist_conv", _reads(MNIST, mnist_conv_problems, conv=True,
                          validation=datasets.mnist_validation)),
    ("cifar10_conv", _reads(CIFAR10, cifar10_conv_problems, conv=True)),
    ("mnist_mlp", _reads(MNIST, mnist_mlp_problems,
                         validation=datasets.mnist_validation)),
    ("one_hot_sparse_softmax",
     _generated(one_hot_sparse_softmax_2_class_sparse_problems)),
    ("quadratic", _generated(quadratic_problems)),
    ("noisy_quadratic", _generated(quadratic_problems_noisy)),
    ("large_quadratic", _generated(quadratic_problems_large)),
    ("bowl", _generated(bowl_problems)),
    ("noisy_bowl", _generated(bowl_problems_noisy)),
    ("softmax_2_class", _generated(softmax_2_class_problems)),
    ("noisy_softmax_2_class", _generated(softmax_2_class_problems_noisy)),
    ("optimization_test", _generated(optimization_test_problems)),
    ("noisy_optimization_test",
     _generated(optimization_test_problems_noisy)),
    ("fully_connected_random_2_class",
     _generated(fully_connected_random_2_class_problems)),
    ("matmul", _generated(matmul_problems)),
    ("log_objective", _generated(log_objective_problems)),
    ("rescale", _generated(rescale_problems)),
    ("norm", _generated(norm_problems)),
    ("noisy_norm", _generated(norm_problems_noisy)),
    ("sum", _generated(sum_problems)),
    ("noisy_sum", _generated(sum_problems_noisy)),
    ("sparse_gradient", _generated(sparse_gradient_problems)),
    ("min_max_well", _generated(min_max_well_problems)),
    ("sum_of_quadratics", _generated(sum_of_quadratics_problems)),
    ("projection_quadratic", _generated(projection_quadratic_problems)),
    ("outward_snake", _generated(outward_snake_problems)),
    ("dependency_chain", _generated(dependency_chain_problems)),
    ("lasso", _generated(lasso_problems)),
    ("rastrigin", _generated(rastrigin_problems)),
])

# Flag stem -> entry for metatest.py; the same flag names select the
# evaluation copy's test-split sets.
EVALUATION_SETS = collections.OrderedDict([
    ("mnist_mlp", _reads(MNIST, test_mnist_mlp_problems)),
    ("mnist_mlp_relu", _reads(MNIST, test_mnist_mlp_relu_problems)),
    ("mnist_mlp_deeper", _reads(MNIST, test_mnist_mlp_deeper_problems)),
    ("mnist_conv", _reads(MNIST, test_mnist_conv_problems, conv=True)),
    ("mnist_conv_orig", _reads(MNIST, test_mnist_conv_orig_problems,
                               conv=True)),
    ("cifar10_conv", _reads(CIFAR10, test_cifar10_conv_problems, conv=True)),
])

# Flag stem -> entry for held-out evaluation: each set returns
# [(spec, datasets.Splits, HELDOUT_BATCH_SIZE)]. Fashion-MNIST first (it
# installs from Debian; see docs/data.md), then the MNIST counterparts, which
# need the MNIST training files.
HELDOUT_SETS = collections.OrderedDict([
    ("fashion_mnist_mlp_heldout",
     _reads(FASHION_MNIST, fashion_mnist_mlp_heldout_problems, heldout=True)),
    ("fashion_mnist_mlp_relu_heldout",
     _reads(FASHION_MNIST, fashion_mnist_mlp_relu_heldout_problems,
            heldout=True)),
    ("fashion_mnist_mlp_deeper_heldout",
     _reads(FASHION_MNIST, fashion_mnist_mlp_deeper_heldout_problems,
            heldout=True)),
    ("fashion_mnist_conv_heldout",
     _reads(FASHION_MNIST, fashion_mnist_conv_heldout_problems, heldout=True,
            conv=True)),
    ("mnist_mlp_heldout",
     _reads(MNIST, mnist_mlp_heldout_problems, heldout=True)),
    ("mnist_mlp_relu_heldout",
     _reads(MNIST, mnist_mlp_relu_heldout_problems, heldout=True)),
    ("mnist_mlp_deeper_heldout",
     _reads(MNIST, mnist_mlp_deeper_heldout_problems, heldout=True)),
    ("mnist_conv_heldout",
     _reads(MNIST, mnist_conv_heldout_problems, heldout=True, conv=True)),
])

# Sets that exist but no flag selects, as in the original. (test_problems
# mixes MLPs and conv nets; no program reads its `conv`.)
OTHER_SETS = collections.OrderedDict([
    ("sparse_gradient_mlp", _generated(sparse_gradient_problems_mlp)),
    ("adapter_rosenbrock_local", _generated(adapter_rosenbrock_local)),
    ("adapter_rosenbrock_worker", _generated(adapter_rosenbrock_worker)),
    ("test_problems", _reads(MNIST, test_problems)),
])


def _evaluation_choices():
  choices = collections.OrderedDict(EVALUATION_SETS)
  choices.update((stem, entry) for stem, entry in TRAINING_SETS.items()
                 if stem not in EVALUATION_SETS)
  choices.update(HELDOUT_SETS)
  return choices


# Flag stem -> entry of every set metatest.py can select, in its order: the
# evaluation copy's sets, the training sets it has no copy of, the held-out
# sets.
EVALUATION_CHOICES = _evaluation_choices()

# Training sets whose data have a validation hold-out, with its loader
# (for a validation meta-objective).
VALIDATION_DATA = collections.OrderedDict(
    (stem, entry.validation) for stem, entry in TRAINING_SETS.items()
    if entry.validation is not None)


def flag_name(stem):
  """The entry-point flag of a registry stem: include_<stem>_problems."""
  return "include_%s_problems" % stem


def _check_stems(registry, stems):
  unknown = sorted(s for s in stems if s not in registry)
  if unknown:
    raise ValueError("unknown problem set(s) %s; known: %s" %
                     (", ".join(unknown), ", ".join(registry)))


def training_problems(stems, data_dir=None, validation=False):
  """The meta-training problem list for the enabled flag stems.

  Sets are appended in the registry's order whatever the order of `stems`.
  As in the original, "sparse_gradient" also brings
  `sparse_gradient_problems_mlp` (right after its own entries) when
  "fully_connected_random_2_class" is on too.

  Args:
    stems: iterable of TRAINING_SETS keys.
    data_dir: data folder for the sets that read real data.
    validation: give each entry `datasets.Splits(train=<its data>,
      validation=<the hold-out>, test=None)` (a validation meta-objective);
      only the sets of VALIDATION_DATA have one.

  Returns:
    A list of (spec, dataset, batch_size).

  Raises:
    ValueError: a stem is not in TRAINING_SETS, or has no validation
      hold-out when `validation` is asked for.
  """
  stems = set(stems)
  _check_stems(TRAINING_SETS, stems)
  if validation:
    without = [s for s in TRAINING_SETS if s in stems and
               s not in VALIDATION_DATA]
    if without:
      raise ValueError(
          "--meta_objective_split=validation: --%s has no validation "
          "hold-out; the sets with one are %s" % (
              flag_name(without[0]),
              ", ".join("--" + flag_name(s) for s in VALIDATION_DATA)))
  problems = []
  for stem, entry in TRAINING_SETS.items():
    if stem in stems:
      entries = entry.problems(data_dir)
      if validation:
        held_out = VALIDATION_DATA[stem](data_dir=data_dir)
        entries = [(spec, datasets.Splits(dataset, held_out, None), batch)
                   for spec, dataset, batch in entries]
      problems.extend(entries)
      if (stem == "sparse_gradient" and
          "fully_connected_random_2_class" in stems):
        problems.extend(sparse_gradient_problems_mlp())
  return problems


def _selected_problems(registry, stems, data_dir):
  """The sets of `registry` named in `stems`, concatenated in registry order."""
  stems = set(stems)
  _check_stems(registry, stems)
  problems = []
  for stem, entry in registry.items():
    if stem in stems:
      problems.extend(entry.problems(data_dir))
  return problems


def evaluation_problems(stems, data_dir=None):
  """The evaluation problem list for the enabled flag stems (test splits)."""
  return _selected_problems(EVALUATION_SETS, stems, data_dir)


def heldout_problems(stems, data_dir=None):
  """The held-out evaluation problem list for the enabled flag stems.

  Sets are appended in HELDOUT_SETS order whatever the order of `stems`.

  Args:
    stems: iterable of HELDOUT_SETS keys.
    data_dir: data folder (Fashion-MNIST also falls back to Debian's
      /usr/share/datasets/fashion-mnist/).

  Returns:
    A list of (spec, datasets.Splits, batch_size): train on `splits.train`
    only; `splits.validation` and `splits.test` are never trained on.

  Raises:
    ValueError: a stem is not in HELDOUT_SETS.
  """
  return _selected_problems(HELDOUT_SETS, stems, data_dir)
