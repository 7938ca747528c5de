"""What the meta-training graph is fed: problem draws, data, parameters."""

import collections
import random

import numpy as np

from problems import datasets


def draw_problems(problems_and_data, num_problems, select_random_problems,
                  rng=None):
  """Entries of `problems_and_data` to train on, one per problem draw.

  Random draws with replacement, or (chief of several workers) the list
  shuffled and repeated.
  """
  rng = random if rng is None else rng
  if select_random_problems:
    return [rng.choice(problems_and_data) for _ in range(num_problems)]
  shuffled = list(problems_and_data)
  rng.shuffle(shuffled)
  repeats = num_problems // len(shuffled) + 1
  return (shuffled * repeats)[:num_problems]


SPLITS = ("train", "validation")


def training_parts(dataset, split, spec=None):
  """(training data, validation data or None) of a problem entry's data.

  Args:
    dataset: a `datasets.Dataset`, a `datasets.Splits` (its `train` is
      trained on, its `validation` held out) or None.
    split: where the meta-objective is measured, one of SPLITS.
    spec: the problem's Spec, for the error message.

  Raises:
    ValueError: an unknown `split`, or "validation" without a validation
      part.
  """
  if split not in SPLITS:
    raise ValueError("--meta_objective_split=%s: expected one of %s" %
                     (split, ", ".join(SPLITS)))
  splits = isinstance(dataset, datasets.Splits)
  train = dataset.train if splits else dataset
  if split == "train":
    return train, None
  if not splits or dataset.validation is None or not dataset.validation.size:
    name = getattr(getattr(spec, "callable", None), "__name__", "problem")
    raise ValueError("--meta_objective_split=validation needs a validation "
                     "part of the %s problem's data; this problem has none"
                     % name)
  return train, dataset.validation


class UnrollData(collections.namedtuple(
    "UnrollData",
    "mini_data mini_labels batches teacher_batches objective_data "
    "objective_labels", defaults=(None, None))):
  """What one partial unroll is fed: its mini-dataset and batch indices.

  `teacher_batches` holds the k index lists per learner step of an imitation
  unroll (the learner's batches are every k-th of them). `objective_data`
  and `objective_labels`, when not None, are the held-out samples its
  meta-objective is measured on (`--meta_objective_split=validation`).
  """


NO_DATA = UnrollData(None, None, None, None)


def unroll_data(dataset, batch_size, lengths, mini_batch_size, data_freeze,
                rng=None, k=1, validation=None):
  """Mini-datasets and batch indices for the unrolls of one meta-iteration.

  Each unroll gets a subset of min(mini_batch_size, N) samples: the first
  ones with `data_freeze`, else a fresh random subset. Batch indices index
  into the subset and run over all unrolls as one epoch sequence.

  Every random draw happens here, in the original's order; the subsets'
  samples are copied out of the data set only when an unroll's entry is
  read (`UnrollSequence`), so a meta-iteration of many unrolls holds one
  mini-dataset at a time instead of all of them (75 copies of 15.7 MB at
  curriculum stage 4 on the MNIST MLP).

  With a `validation` data set (`--meta_objective_split=validation`), each
  unroll also gets min(mini_batch_size, its size) validation samples (the
  first ones with `data_freeze`, else a fresh random subset, drawn after
  every draw above so that the training draws are those of a run without
  it): the meta-objective is measured on them, while the optimizee's
  batches come from the training subset only.

  Args:
    dataset: a `datasets.Dataset`, or None for data-free problems.
    batch_size: samples per batch.
    lengths: the unroll lengths.
    mini_batch_size: subset size.
    data_freeze: use the first samples for every unroll.
    rng: `np.random.RandomState` (default: NumPy's global generator).
    k: teacher batches per learner step (imitation; 1 otherwise).
    validation: a `datasets.Dataset` of held-out samples, or None.

  Returns:
    A sequence of `UnrollData`, one per unroll; for data-free problems the
    data fields are None (the placeholders' defaults apply).
  """
  if dataset is None or dataset.size == 0:
    return [UnrollData(None, None, None, [None] * (k * n)) for n in lengths]
  rng = np.random if rng is None else rng
  subset_size = min(mini_batch_size, dataset.size)
  indices = datasets.batch_indices(subset_size, k * sum(lengths), batch_size,
                                   rng=rng)
  subsets, blocks = [], []
  start = 0
  for length in lengths:
    subsets.append(None if data_freeze
                   else rng.permutation(dataset.size)[:subset_size])
    blocks.append(indices[start:start + k * length])
    start += k * length
  held_out = None
  if validation is not None:
    held_size = min(mini_batch_size, validation.size)
    held_out = (validation, held_size,
                [None if data_freeze
                 else rng.permutation(validation.size)[:held_size]
                 for _ in lengths])
  return UnrollSequence(dataset, subset_size, subsets, blocks, k, held_out)


class UnrollSequence(object):
  """The `UnrollData` of a meta-iteration's unrolls, made when read.

  Indexing (or iterating) gives an `UnrollData` whose mini-dataset is
  copied out of the data set at that moment (with frozen data, a view of
  its first samples).
  """

  def __init__(self, dataset, subset_size, subsets, blocks, k,
               held_out=None):
    self._data, self._labels = _arrays(dataset)
    self._subset_size = subset_size
    self._subsets = subsets
    self._blocks = blocks
    self._k = k
    self._held_out = None
    if held_out is not None:
      validation, size, held_subsets = held_out
      self._held_out = _arrays(validation) + (size, held_subsets)

  def __len__(self):
    return len(self._blocks)

  def __getitem__(self, index):
    if not -len(self) <= index < len(self):
      raise IndexError("unroll %d of %d" % (index, len(self)))
    subset = self._subsets[index]
    if subset is None:
      data = self._data[:self._subset_size]
      labels = self._labels[:self._subset_size]
    else:
      data, labels = self._data[subset], self._labels[subset]
    block = self._blocks[index]
    objective_data = objective_labels = None
    if self._held_out is not None:
      held_data, held_labels, size, held_subsets = self._held_out
      held = held_subsets[index]
      if held is None:
        objective_data, objective_labels = held_data[:size], held_labels[:size]
      else:
        objective_data, objective_labels = held_data[held], held_labels[held]
      objective_labels = objective_labels.astype(np.int32)
    return UnrollData(data, labels.astype(np.int32),
                      np.array(block[::self._k], dtype=np.int32), block,
                      objective_data, objective_labels)

  def __iter__(self):
    return (self[i] for i in range(len(self)))


def _arrays(dataset):
  """A data set's data and its labels as a vector."""
  labels = np.asarray(dataset.labels)
  return dataset.data, labels.reshape(len(labels), -1)[:, 0]


def evaluation_data(last_data, lengths, batch_size, mini_batch_size, rng):
  """Batch indices of an evaluation trajectory on the last training subset.

  Args:
    last_data: the `UnrollData` of the last training unroll.
    lengths: the trajectory's unroll lengths.
    batch_size: samples per batch.
    mini_batch_size: subset size.
    rng: `np.random.RandomState`.

  Returns:
    A list of `UnrollData`, one per unroll (no teacher batches).
  """
  if last_data.mini_data is None:
    return [NO_DATA] * len(lengths)
  size = min(mini_batch_size, len(last_data.mini_data))
  indices = datasets.batch_indices(size, sum(lengths), batch_size, rng=rng)
  result = []
  start = 0
  for length in lengths:
    result.append(UnrollData(last_data.mini_data, last_data.mini_labels,
                             np.array(indices[start:start + length],
                                      dtype=np.int32), None))
    start += length
  return result


def initial_parameters(problem, rng):
  """N(0, 1) starting parameters, as the original's meta-training drew."""
  return [rng.standard_normal(shape).astype(np.float32)
          for shape in problem.param_shapes]


def feed(out, x0, lengths, unroll, data, reset, switch=False):
  """The feed dict of one unroll.

  Args:
    out: an `unroll.UnrollOutput`.
    x0: the initial parameters (read on the first unroll).
    lengths: the unroll lengths of the trajectory.
    unroll: index of the unroll into `lengths`.
    data: its `UnrollData`.
    reset: whether the optimizer state starts afresh.
    switch: whether the regulariser is on.
  """
  values = {out.objective_weights: np.ones(lengths[unroll], np.float32) /
                                   lengths[unroll],
            out.first_unroll: unroll == 0,
            out.reset_state: reset,
            out.regularizer_on: switch}
  values.update(zip(out.initial_params, x0))
  if data.mini_data is not None:
    values[out.mini_data] = data.mini_data
    values[out.mini_labels] = data.mini_labels
    values[out.batches] = data.batches
  if data.objective_data is not None:
    values[out.objective_data] = data.objective_data
    values[out.objective_labels] = data.objective_labels
  return values
