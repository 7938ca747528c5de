"""The settings of an evaluation campaign, as frozen configs.

A campaign (evaluation/campaign.py) trains fresh optimizees with every
optimizer of `Optimizers`, at every point of its grid, on every problem and
seed of `Runs`, measures them as `Measurements` says and writes what
`Output` says. Each field made with `run_control.configs.setting` is also a
flag of metatest.py, under the original's name where it differs from the
field's (`Runs.num_steps` is --num_testing_itrs). The other fields are set
by the program: the selected problem sets, the baselines' learning-rate
grids (one flag per baseline of `evaluation.baselines`), the learned
optimizer's settings (the flags of `optimizer.settings`) and the command
line summary.json records.
"""

import dataclasses
from typing import Any, FrozenSet, Mapping, Optional, Tuple

from evaluation import baselines
from evaluation import metrics
from optimizer import settings as settings_lib
from run_control.configs import setting

# The name of the learned optimizer among the evaluated ones (the
# original's --test_optimizer default).
LEARNED = "L2o"
OPTIMIZER_NAMES = (LEARNED,) + baselines.NAMES

# Samples per split of the intermediate held-out points: a recording of the
# conv net on 3 x 2,000 samples takes about 0.5 s on 2 cores (about 7% of a
# 10,000-step run at 50 points), on 20,000 about 1.6 s.
METRICS_SUBSET = 5000
CONV_METRICS_SUBSET = 2000
# Training samples of the Hessian estimates of conv nets (bounded cost: one
# Hessian-vector product over 2,000 samples of the evaluation conv net takes
# about 1.4 s on 2 cores, over 10,000 about 7 s; see bench/RESULTS.md).
CONV_HESSIAN_SAMPLES = 2000


class SettingError(ValueError):
  """A setting that cannot work; the one-line message names its flag."""


@dataclasses.dataclass(frozen=True)
class Optimizers:
  """The optimizers evaluated and the grids each is tuned over.

  The optimizer under test comes first, then those compared with it. The
  learned optimizer is restored from a checkpoint of its log directory
  <train_dir>/<optimizer>_<cell_cls>_<cell_size>_<num_cells>; its settings
  are those recorded there (optimizer.json) where the file exists, else
  `settings`.
  """
  test_optimizer: str = setting(
      LEARNED, "Optimizer to test: %s." % ", ".join(OPTIMIZER_NAMES))
  compare_with: Tuple[str, ...] = setting(
      (), "Comparison mode: also run these optimizers (%s) on the same "
      "problems and seeds, and print a table." % ", ".join(OPTIMIZER_NAMES))
  train_dir: str = setting(
      "opt/", "Parent of the log directory <train_dir>/<optimizer>_"
      "<cell_cls>_<cell_size>_<num_cells> holding the learned optimizer's "
      "checkpoints.")
  checkpoint_name: str = setting(
      "", "Checkpoint file name in the log directory (empty: its latest "
      "checkpoint).", flag="restore_model_name")
  initial_learning_rates: Tuple[str, ...] = setting(
      (), "Grid of the learned optimizer's initial per-coordinate learning "
      "rates: entries low:high (drawn from that range, as --min_lr/--max_lr) "
      "or one value (every coordinate starts there); the --min_lr:--max_lr "
      "range is always a point. Empty: that range alone, or, in comparison "
      "mode with baseline grids of k points, a default grid of k points.",
      flag="init_lr_grid")
  # Baseline name -> its learning-rate flag's entries (a grid of one or more
  # points); a baseline missing here runs at its default learning rate.
  learning_rates: Mapping[str, Tuple[str, ...]] = dataclasses.field(
      default_factory=dict)
  # The learned optimizer's settings (optimizer.settings.NAMES -> value) as
  # the flags give them, and the names of those given on the command line
  # (a recorded setting they contradict is reported as such).
  settings: Mapping[str, Any] = dataclasses.field(
      default_factory=settings_lib.defaults)
  explicit_settings: FrozenSet[str] = frozenset()

  @property
  def names(self):
    """The optimizers to run: the one under test, then those compared."""
    names = [self.test_optimizer]
    for name in self.compare_with:
      if name not in names:
        names.append(name)
    return names


@dataclasses.dataclass(frozen=True)
class Runs:
  """The runs of each optimizer and grid point: problems, steps, seeds."""
  num_steps: int = setting(100, "Optimizer steps per seed.",
                           flag="num_testing_itrs")
  seeds: Tuple[int, ...] = setting(
      (6, 12, 18, 24, 30), "Seeds of the initial parameters (the original "
      "hard-coded 6,12,18,24,30).")
  seed_batch_order: bool = setting(
      True, "Draw each seed's minibatch order from that seed, so every "
      "optimizer sees the same batches (the original used NumPy's unseeded "
      "global generator).")
  record_every: int = setting(
      0, "If positive, also pickle the original's detailed records every "
      "this many steps.")
  log_every: int = setting(1000, "Steps between progress lines.")
  data_dir: Optional[str] = setting(
      None, "Data folder (default: $L2O_DATA_DIR, else "
      "~/.cache/l2o-scale/data).")
  # The stems of the selected sets (of problem_sets.EVALUATION_CHOICES).
  problem_sets: Tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Measurements:
  """What is measured besides the training losses.

  Held-out sets record loss and accuracy on their splits over time; after
  the last step of every run the Hessian's top eigenvalue and trace on the
  training data measure the flatness of the solution. Conv nets are
  measured on bounded sample counts unless a count is given.
  """
  metrics_every: int = setting(
      0, "Held-out sets: steps between recordings of loss and accuracy on "
      "the splits (0: about %d points per run)." % metrics.DEFAULT_POINTS)
  metrics_subset: int = setting(
      -1, "Held-out sets: before the last step, measure each split on a "
      "fixed random subset of at most this many samples (0: every sample; "
      "-1: %d for conv nets, %d otherwise); the last point always uses "
      "every sample." % (CONV_METRICS_SUBSET, METRICS_SUBSET))
  hessian: bool = setting(
      True, "After the last step, estimate the Hessian's top eigenvalue "
      "(Lanczos) and trace (Hutchinson) of the loss on the training data.",
      flag="hessian_metrics")
  lanczos_steps: int = setting(
      30, "Lanczos steps of the top eigenvalue and spectral density.",
      flag="hessian_lanczos_steps")
  trace_probes: int = setting(
      10, "Rademacher probes of the Hutchinson trace (its standard error is "
      "reported).", flag="hessian_trace_probes")
  hessian_max_samples: int = setting(
      -1, "Training samples the Hessian is measured on: a fixed subset of "
      "at most this many (0: all; -1: %d for conv nets, all otherwise)." %
      CONV_HESSIAN_SAMPLES)
  spectrum: bool = setting(
      False, "Also plot the Hessian's spectral density (stochastic Lanczos "
      "quadrature) of the final solutions: hessian_spectrum-<model_name>."
      "png, one panel per optimizer.", flag="hessian_spectrum")

  def metrics_subset_size(self, conv):
    """Samples per split of the intermediate points, or None (all)."""
    subset = self.metrics_subset
    if subset < 0:
      subset = CONV_METRICS_SUBSET if conv else METRICS_SUBSET
    return subset or None

  def hessian_samples(self, conv):
    """Training samples of the Hessian estimates, or None (all)."""
    samples = self.hessian_max_samples
    if samples < 0:
      samples = CONV_HESSIAN_SAMPLES if conv else 0
    return samples or None


@dataclasses.dataclass(frozen=True)
class Output:
  """Where the results go and what is written besides them."""
  save_dir: str = setting("opt/", "Output folder (created if missing).")
  model_name: str = setting("mt", "Suffix of the output file names.")
  plot: bool = setting(True, "Write loss_curves-<model_name>.png (needs "
                       "matplotlib).")
  # summary.json's "command": the command line that produced it.
  command: Tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Campaign:
  """Every setting of one evaluation campaign."""
  optimizers: Optimizers = dataclasses.field(default_factory=Optimizers)
  runs: Runs = dataclasses.field(default_factory=Runs)
  measurements: Measurements = dataclasses.field(
      default_factory=Measurements)
  output: Output = dataclasses.field(default_factory=Output)


# The configs whose settings are flags of metatest.py, in the order defined.
FLAG_CONFIGS = (Optimizers, Runs, Measurements, Output)
