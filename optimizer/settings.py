"""The optimizer-shape settings shared by metarun.py, metatest.py and users.

The original defined these as flags in each entry program (same names and
defaults everywhere). Here they are one table: the entry points turn it into
absl flags (optimizer_flags.py), `optimizer_spec` maps values onto a
constructor call, and a run's values are recorded next to its checkpoints
(`optimizer.json`) so that evaluation and drop-in use rebuild the same
optimizer. Nothing here reads flags.
"""

import json
import os

from problems import problem_spec
from run_control import atomic

# The HierarchicalRNN's level sizes are fixed in the original (the cell_size
# and num_cells flags only name the log directory for it).
HRNN_CELL_SIZES = (10, 20, 20)

CONFIG_FILE = "optimizer.json"

# (name, type, default, help). Defaults are the original flags' defaults;
# for use_problem_lr_mean, use_gradient_shortcut and use_grad_products they
# differ from the HierarchicalRNN constructor's, and the flag wins.
FLAG_TABLE = (
    ("optimizer", str, "HierarchicalRNN", "Learned optimizer class."),
    ("cell_size", int, 20, "Cell size (CoordinatewiseRNN; for "
     "HierarchicalRNN only part of the log directory name)."),
    ("num_cells", int, 2, "Number of cells (as cell_size)."),
    ("cell_cls", str, "GRUCell", "RNN cell class by name."),
    ("min_lr", float, 1e-6, "Lower end of the initial learning rates."),
    ("max_lr", float, 1e-2, "Upper end of the initial learning rates."),
    ("zero_init_lr_weights", bool, True,
     "Zero-initialise the learning-rate readout."),
    ("use_relative_lr", bool, True, "Relative log-LR feature."),
    ("use_extreme_indicator", bool, False,
     "Extreme learning-rate indicator feature."),
    ("use_log_means_squared", bool, True,
     "Log mean-squared gradient features."),
    ("use_problem_lr_mean", bool, True,
     "Relative LR against the problem-wide mean."),
    ("learnable_decay", bool, True, "Learn the RMS decays."),
    ("dynamic_output_scale", bool, True,
     "Learned log learning rates; unit-RMS directions."),
    ("use_log_objective", bool, True, "Log meta-objective."),
    ("use_attention", bool, False, "Attended gradient location."),
    ("use_second_derivatives", bool, True,
     "Back-propagate through the problem's gradients."),
    ("num_gradient_scales", int, 4, "Momentum timescales."),
    ("max_log_lr", float, 33., "Upper clip of the log learning rate."),
    ("objective_training_max_multiplier", float, -1.,
     "Stop an unroll once the objective exceeds this multiple of the "
     "initial one (<= 0: never)."),
    ("use_gradient_shortcut", bool, True,
     "Linear map of the scaled gradients into the step."),
    ("use_lr_shortcut", bool, False, "log_lr - log(1e-3) feature."),
    ("use_grad_products", bool, True,
     "Products of adjacent-timescale gradients."),
    ("use_multiple_scale_decays", bool, False,
     "One scale decay per timescale."),
    ("use_numerator_epsilon", bool, False,
     "Epsilon also in the numerator of the log objective."),
    ("learnable_inp_decay", bool, True, "Learn the input decay."),
    ("learnable_rnn_init", bool, True, "Learn the initial RNN states."),
    ("biasgrucell_scale", float, 0.5, "BiasGRUCell weight scale."),
    ("biasgrucell_gate_bias_init", float, 2.2,
     "Initial gate bias of the BiasGRUCells."),
    ("hrnn_rnn_readout_scale", float, 0.5, "HRNN readout scale."),
    ("hrnn_default_decay_var_init", float, 2.2, "Initial input-decay bias."),
    ("scale_decay_bias_init", float, 3.2, "Initial scale-decay bias."),
    ("learning_rate_momentum_logit_init", float, 3.2,
     "Initial learning-rate momentum logit."),
    ("hrnn_affine_scale", float, 0.5,
     "Scale of the HRNN inter-level affine maps."),
    ("crnn_rnn_readout_scale", float, 0.5, "cRNN readout scale."),
    ("crnn_default_decay_var_init", float, 2.2, "Initial cRNN decay bias."),
)

NAMES = tuple(row[0] for row in FLAG_TABLE)

_HRNN_KWARGS = (
    "learnable_decay", "dynamic_output_scale", "num_gradient_scales",
    "zero_init_lr_weights", "use_log_means_squared", "use_relative_lr",
    "use_extreme_indicator", "max_log_lr", "use_problem_lr_mean",
    "use_gradient_shortcut", "use_lr_shortcut", "use_grad_products",
    "use_multiple_scale_decays", "learnable_inp_decay", "learnable_rnn_init",
    "biasgrucell_scale", "biasgrucell_gate_bias_init",
    "hrnn_rnn_readout_scale", "hrnn_default_decay_var_init",
    "scale_decay_bias_init", "learning_rate_momentum_logit_init",
    "hrnn_affine_scale")


def defaults():
  """A dict of every setting at its original flag default."""
  return {name: default for name, _, default, _ in FLAG_TABLE}


def complete(values):
  """`values` (a dict, possibly partial) with every missing setting filled in.

  Raises:
    ValueError: a key that is not a setting.
  """
  unknown = sorted(set(values) - set(NAMES))
  if unknown:
    raise ValueError("unknown optimizer setting(s) %s; known: %s" %
                     (", ".join(unknown), ", ".join(NAMES)))
  result = defaults()
  result.update(values)
  return result


def optimizer_spec(values, random_seed=None):
  """The `problem_spec.Spec` of the optimizer that `values` describe.

  Args:
    values: dict with (at least) every setting of FLAG_TABLE; other keys are
      ignored.
    random_seed: seed of the optimizer's random draws (initialisers and the
      initial per-coordinate learning rates), for the optimizers that have
      them (HierarchicalRNN, CoordinatewiseRNN); None: unseeded.
  """
  spec = _unseeded_spec(values)
  if random_seed is not None and spec.callable.__name__ in (
      "HierarchicalRNN", "CoordinatewiseRNN"):
    spec = spec._replace(kwargs=dict(spec.kwargs, random_seed=random_seed))
  return spec


def _unseeded_spec(values):
  from optimizer import registry  # pylint: disable=g-import-not-at-top
  name = values["optimizer"]
  base = dict(
      use_attention=values["use_attention"],
      use_log_objective=values["use_log_objective"],
      obj_train_max_multiplier=values["objective_training_max_multiplier"],
      use_second_derivatives=values["use_second_derivatives"],
      use_numerator_epsilon=values["use_numerator_epsilon"])
  cls = registry.optimizer_class(name)
  if name == "HierarchicalRNN":
    kwargs = dict(base, init_lr_range=(values["min_lr"], values["max_lr"]))
    for key in _HRNN_KWARGS:
      kwargs[key] = values[key]
    return problem_spec.Spec(cls, (list(HRNN_CELL_SIZES),), kwargs)
  if name == "CoordinatewiseRNN":
    kwargs = dict(base, init_lr_range=(values["min_lr"], values["max_lr"]),
                  dynamic_output_scale=values["dynamic_output_scale"],
                  learnable_decay=values["learnable_decay"],
                  zero_init_lr_weights=values["zero_init_lr_weights"],
                  crnn_rnn_readout_scale=values["crnn_rnn_readout_scale"],
                  crnn_default_decay_var_init=values[
                      "crnn_default_decay_var_init"])
    return problem_spec.Spec(
        cls, ([values["cell_size"]] * values["num_cells"],
              values["cell_cls"]), kwargs)
  return problem_spec.Spec(cls, (), base)


def log_directory_name(values):
  """The original's log directory name: <optimizer>_<cell_cls>_<size>_<n>."""
  return "%s_%s_%d_%d" % (values["optimizer"], values["cell_cls"],
                          values["cell_size"], values["num_cells"])


def save(logdir, values):
  """Records the settings in `<logdir>/optimizer.json` unless already there.

  The first run in a log directory defines its optimizer; a resumed run
  restores that optimizer's checkpoints, so the file is never rewritten.

  Returns:
    The path of the file.
  """
  path = os.path.join(logdir, CONFIG_FILE)
  if os.path.exists(path):
    return path
  atomic.write_json(path, {name: values[name] for name in NAMES})
  return path


def load(logdir):
  """The settings recorded in `<logdir>/optimizer.json`, or None if absent.

  Raises:
    ValueError: the file is not a JSON object of known settings (the message
      names the file).
  """
  path = os.path.join(logdir, CONFIG_FILE)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      record = json.load(f)
  except ValueError as e:
    raise ValueError("%s: not valid JSON (%s)" % (path, e)) from None
  if not isinstance(record, dict):
    raise ValueError("%s: expected a JSON object of optimizer settings" %
                     path)
  try:
    return complete(record)
  except ValueError as e:
    raise ValueError("%s: %s" % (path, e)) from None
