"""The settings of the learned optimizers, one frozen config per optimizer.

Each field made with `run_control.configs.setting` is also an entry-point
flag (`optimizer.settings.FLAG_TABLE` is derived from these classes); the
other fields are constructor arguments only. Defaults are the constructors';
where the original's flags default otherwise, `flag_default` says so. The
constructors keep their keyword arguments and expose the config as
`optimizer.config`.
"""

import dataclasses
import typing

from run_control.configs import setting


@dataclasses.dataclass(frozen=True)
class TrainableOptimizerConfig:
  """Settings of every `TrainableOptimizer`."""

  use_attention: bool = setting(False, "Attended gradient location.")
  use_log_objective: bool = setting(False, "Log meta-objective.",
                                    flag_default=True)
  obj_train_max_multiplier: float = setting(
      -1, "Stop an unroll once the objective exceeds this multiple of the "
      "initial one (<= 0: never).", flag="objective_training_max_multiplier",
      flag_default=-1.)
  use_second_derivatives: bool = setting(
      True, "Back-propagate through the problem's gradients.")
  use_numerator_epsilon: bool = setting(
      False, "Epsilon also in the numerator of the log objective.")


@dataclasses.dataclass(frozen=True)
class HRNNConfig(TrainableOptimizerConfig):
  """Settings of `HierarchicalRNN` (see its constructor for their meaning)."""

  use_log_objective: bool = setting(True, "Log meta-objective.")
  level_sizes: typing.Tuple[int, ...] = (10, 20, 20)
  init_lr_range: typing.Tuple[float, float] = (1e-6, 1e-2)
  zero_init_lr_weights: bool = setting(
      True, "Zero-initialise the learning-rate readout.")
  use_relative_lr: bool = setting(True, "Relative log-LR feature.")
  use_extreme_indicator: bool = setting(
      False, "Extreme learning-rate indicator feature.")
  use_log_means_squared: bool = setting(
      True, "Log mean-squared gradient features.")
  use_problem_lr_mean: bool = setting(
      False, "Relative LR against the problem-wide mean.", flag_default=True)
  learnable_decay: bool = setting(True, "Learn the RMS decays.")
  dynamic_output_scale: bool = setting(
      True, "Learned log learning rates; unit-RMS directions.")
  num_gradient_scales: int = setting(4, "Momentum timescales.")
  max_log_lr: float = setting(33, "Upper clip of the log learning rate.",
                              flag_default=33.)
  use_gradient_shortcut: bool = setting(
      False, "Linear map of the scaled gradients into the step.",
      flag_default=True)
  use_lr_shortcut: bool = setting(False, "log_lr - log(1e-3) feature.")
  use_grad_products: bool = setting(
      False, "Products of adjacent-timescale gradients.", flag_default=True)
  use_multiple_scale_decays: bool = setting(
      False, "One scale decay per timescale.")
  learnable_inp_decay: bool = setting(True, "Learn the input decay.")
  learnable_rnn_init: bool = setting(True, "Learn the initial RNN states.")
  biasgrucell_scale: float = setting(0.5, "BiasGRUCell weight scale.")
  biasgrucell_gate_bias_init: float = setting(
      2.2, "Initial gate bias of the BiasGRUCells.")
  hrnn_rnn_readout_scale: float = setting(0.5, "HRNN readout scale.")
  hrnn_default_decay_var_init: float = setting(
      2.2, "Initial input-decay bias.")
  scale_decay_bias_init: float = setting(3.2, "Initial scale-decay bias.")
  learning_rate_momentum_logit_init: float = setting(
      3.2, "Initial learning-rate momentum logit.")
  hrnn_affine_scale: float = setting(
      0.5, "Scale of the HRNN inter-level affine maps.")
  random_seed: typing.Optional[int] = None
  global_rnn_sees_all_tensors: bool = False
  xla_apply: bool = True


@dataclasses.dataclass(frozen=True)
class CRNNConfig(TrainableOptimizerConfig):
  """Settings of `CoordinatewiseRNN` (see its constructor)."""

  cell_sizes: typing.Tuple[int, ...] = (20, 20)
  cell_cls: typing.Any = "GRUCell"
  init_lr_range: typing.Tuple[float, float] = (1., 1.)
  dynamic_output_scale: bool = setting(
      True, "Learned log learning rates; unit-RMS directions.")
  learnable_decay: bool = setting(True, "Learn the RMS decays.")
  zero_init_lr_weights: bool = setting(
      False, "Zero-initialise the learning-rate readout.", flag_default=True)
  crnn_rnn_readout_scale: float = setting(0.5, "cRNN readout scale.")
  crnn_default_decay_var_init: float = setting(
      2.2, "Initial cRNN decay bias.")
  random_seed: typing.Optional[int] = None


def from_arguments(config_class, arguments):
  """The config of a constructor's arguments (a dict, e.g. its locals()).

  Entries that are not fields (self, a class cell) are ignored.
  """
  names = {f.name for f in dataclasses.fields(config_class)}
  return config_class(**{k: v for k, v in arguments.items() if k in names})
