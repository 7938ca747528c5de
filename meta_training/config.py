"""The settings of meta-training, as frozen configs.

Each field made with `run_control.configs.setting` is also a flag of
metarun.py, under the original's name where it differs from the field's
(`unroll_length` is --fix_unroll_length). The other fields are set by the
program (e.g. the regulariser function metarun.py builds from the flags).
"""

import dataclasses
from typing import Any, Optional, Tuple

from meta_training import curriculum as curriculum_lib
from run_control.configs import setting


@dataclasses.dataclass(frozen=True)
class Schedule:
  """Problem draws, meta-iterations and the unroll schedule.

  Fixed (`fixed`): num_steps // unroll_length unrolls of `unroll_length`
  steps. Random (the default): round(Exp(scale)) + min unrolls, and as many
  steps per unroll, each clipped to three times its minimum. Curriculum
  (`curriculum`): unrolls of `unroll_length` steps over the stages'
  horizons `curriculum_steps` (see `curriculum`). Horizon sampling
  (`horizon_sampling`): each task's trajectories have horizons drawn
  log-uniformly in [min_horizon, max_horizon] and run on across
  meta-iterations of num_steps // unroll_length unrolls.
  """
  num_problems: int = setting(1, "Number of problem draws.")
  num_meta_iterations: int = setting(5, "Meta-iterations per problem draw.")
  fixed: bool = setting(False, "Fixed unroll schedule.", flag="fix_unroll")
  unroll_length: int = setting(20, "Steps per unroll.",
                               flag="fix_unroll_length")
  num_steps: int = setting(100, "Steps per meta-iteration (fixed schedule).",
                           flag="fix_num_steps")
  num_unrolls_scale: int = setting(
      40, "Random schedule: exponential scale of the unroll count.",
      flag="num_unroll_scale")
  min_num_unrolls: int = setting(
      10, "Random schedule: minimum unroll count (capped at 3x).")
  unroll_length_scale: int = setting(
      20, "Random schedule: exponential scale of unroll lengths.",
      flag="num_partial_unroll_itr_scale")
  min_unroll_length: int = setting(
      10, "Random schedule: minimum unroll length (capped at 3x).",
      flag="min_num_itr_partial_unroll")
  curriculum: bool = setting(False, "Curriculum learning.", flag="if_cl")
  # A flag of the optimizer's table (optimizer/settings.py), read here too.
  max_objective_multiplier: float = setting(
      -1., "Stop a meta-iteration's unrolls once the objective exceeds "
      "initial + (m - 1) |initial| (<= 0: never).",
      flag="objective_training_max_multiplier")
  curriculum_stages: int = setting(
      0, "Curriculum: train at most this many stages (each is evaluated on "
      "the next stage's horizon); 0: all of them.")
  horizon_sampling: bool = setting(
      False, "Horizon sampling: every task runs trajectories of a horizon "
      "drawn log-uniformly in [--min_horizon, --max_horizon] steps (whole "
      "unrolls of --fix_unroll_length), carried across meta-iterations; a "
      "meta-iteration is --fix_num_steps // --fix_unroll_length partial "
      "unrolls of every task.")
  min_horizon: int = setting(100, "Horizon sampling: shortest trajectory "
                             "(steps).")
  max_horizon: int = setting(1000, "Horizon sampling: longest trajectory "
                             "(steps).")
  stagger_tasks: bool = setting(
      True, "Horizon sampling: task k of K cuts the first k/K of its first "
      "trajectory, so that a meta-update sees the tasks at staggered "
      "positions in their trajectories.")
  curriculum_steps: Tuple[int, ...] = curriculum_lib.DEFAULT_NUM_STEPS
  curriculum_min_evaluations: int = curriculum_lib.DEFAULT_MIN_NUM_EVAL
  # Draw problems at random with replacement (else shuffled round-robin,
  # the chief of several workers).
  random_problems: bool = True


@dataclasses.dataclass(frozen=True)
class MetaOptimizer:
  """How meta-gradients are estimated and applied to the meta-parameters."""
  learning_rate: float = setting(
      1e-4, "Learning rate of the RMSProp meta-optimizer.",
      flag="meta_learning_rate", flag_default=1e-6)
  rms_decay: float = setting(0.9, "RMSProp meta-optimizer decay.")
  rms_epsilon: float = setting(1e-20, "RMSProp meta-optimizer epsilon.")
  # Non-finite entries become 0 before the clip.
  gradient_clip: float = setting(5., "Elementwise clip of the meta-gradients.",
                                 flag="gradient_clip_level", flag_default=1e4)
  l2_reg: float = setting(0., "L2 penalty on the meta-parameters.")
  gradient_estimator: str = setting(
      "truncated_backprop", "Meta-gradient estimator (meta_training/"
      "estimators): truncated_backprop, the original's backpropagation "
      "through each partial unroll, es, antithetic evolution strategies "
      "(forward-only; see --es_pairs, --es_sigma), or pes, persistent "
      "evolution strategies (es whose pairs carry their states and "
      "perturbations across a trajectory's partial unrolls).")
  num_tasks: int = setting(
      1, "Task instances per meta-update (each with its own initial "
      "parameters and batches), built in one graph and run together; every "
      "estimator averages its estimate over them.", flag="task_batch_size")
  es_pairs: int = setting(
      8, "Evolution strategies (es, pes): antithetic perturbation pairs per "
      "meta-update (each pair is two forward runs of the partial unroll).")
  es_sigma: float = setting(
      0.01, "Evolution strategies (es, pes): standard deviation of the "
      "meta-parameter perturbations.")
  # The options below default to the original's behaviour (off).
  meta_optimizer: str = setting(
      "rmsprop", "Meta-optimizer: rmsprop (the original: TF1 RMSProp, its "
      "mean-square slot starting at 1) or adam.")
  adam_beta1: float = setting(0.9, "Adam meta-optimizer: first-moment "
                              "decay.", flag="meta_adam_beta1")
  adam_beta2: float = setting(0.999, "Adam meta-optimizer: second-moment "
                              "decay.", flag="meta_adam_beta2")
  adam_epsilon: float = setting(1e-8, "Adam meta-optimizer: epsilon.",
                                flag="meta_adam_epsilon")
  gradient_clip_norm: float = setting(
      0., "Clip the meta-gradients (after --gradient_clip_level) to this "
      "global norm; 0: no norm clipping.")
  warmup_steps: int = setting(
      0, "Meta-updates over which the meta-learning rate rises linearly "
      "from 0 to --meta_learning_rate; 0: none.",
      flag="meta_learning_rate_warmup")
  decay: str = setting(
      "constant", "Meta-learning-rate schedule after the warm-up: constant, "
      "or cosine (down to 0 over --meta_learning_rate_decay_steps "
      "meta-updates).", flag="meta_learning_rate_schedule")
  decay_steps: int = setting(
      0, "Meta-updates of the cosine decay after the warm-up.",
      flag="meta_learning_rate_decay_steps")
  loss_ceiling: float = setting(
      0., "Bounded meta-loss: each step's objective relative to the "
      "trajectory's first is clipped at this ceiling, and a non-finite one "
      "(or a step a diverged unroll did not reach) counts as the ceiling; a "
      "meta-gradient with a non-finite entry is then skipped and counted. "
      "0: off (the original's unbounded meta-objective).",
      flag="meta_loss_ceiling")
  train_groups: Tuple[str, ...] = setting(
      (), "Meta-train only these named groups of the optimizer's "
      "meta-parameters (HierarchicalRNN: rnn_initial_states, level0_rnn, "
      "level1_rnn, level2_rnn, update_readout, learning_rate_readout, "
      "decay_readouts); the others stay at their start. Empty: all.",
      flag="meta_parameter_groups")


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """Evaluations, checkpoints and summaries."""
  num_steps: int = setting(100, "Steps per evaluation trajectory.",
                           flag="fix_num_steps_eval")
  period: int = setting(1, "Evaluate every this many meta-iterations.",
                        flag="evaluation_period")
  epochs: int = setting(20, "Trajectories averaged per evaluation.",
                        flag="evaluation_epochs")
  save_period: int = setting(
      1, "Save model.ckpt-<k> every this many meta-iterations.")
  write_histograms: bool = setting(
      False, "Also write the original's histogram summaries.")


@dataclasses.dataclass(frozen=True)
class Data:
  """What each unroll is fed."""
  mini_batch_size: int = setting(10000,
                                 "Samples in each unroll's mini-dataset.")
  frozen: bool = setting(
      False, "Every unroll uses the first mini_batch_size samples.",
      flag="data_freeze")
  reset_state_once: bool = setting(
      True, "True: reset optimizer state only at the start of the first "
      "meta-iteration; False: at every one.", flag="reset_rnn_params")
  meta_objective_split: str = setting(
      "train", "Samples of each unroll's meta-objective: train (the "
      "unroll's own mini-dataset, the original) or validation (a held-out "
      "mini-dataset from the training set's validation part, never trained "
      "on). Evaluations stay on the training mini-dataset.")


@dataclasses.dataclass(frozen=True)
class Regularizer:
  """The Hessian (or Jacobian) regulariser and when it is on.

  `fn` (objective, params) -> scalar is built by the program from `kind`,
  `iterations` and `fixed_probes` (regularizers.registry); None: no
  regulariser, whatever the other fields say.
  """
  timing: str = setting(
      "posterior", "Unrolls with the regulariser on: posterior, prior, none, "
      "anything else = always.", flag="regularize_time")
  switch_fraction: float = setting(
      0.5, "Fraction for the posterior/prior threshold.", flag="reg_scale")
  meta_weight: float = setting(5e-4, "Weight of the optimizer regulariser.",
                               flag="alpha")
  optimizee_weight: float = setting(
      1e-4, "Weight of the optimizee regulariser.", flag="beta")
  on_meta_objective: bool = setting(
      False, "Add the regulariser to the meta-objective.",
      flag="reg_optimizer")
  on_optimizee: bool = setting(
      False, "Add the regulariser to the optimizee objective.",
      flag="reg_optimizee")
  kind: str = setting("hessian", "Regulariser: hessian, hessian-ev, "
                      "hessian-esd, jacob.", flag="reg_option")
  iterations: int = setting(10, "Iterations of the Hessian estimators.",
                            flag="hessian_itrs")
  fixed_probes: bool = setting(
      False, "Freeze the Hessian estimators' probe vectors into the graph, "
      "as the original did (default: fresh per step).",
      flag="fixed_hessian_probes")
  fn: Optional[Any] = None

  def graph_arguments(self):
    """The regulariser keyword arguments of `graph.build_meta_graph`."""
    if self.fn is None:
      return {}
    return dict(
        regularizer_fn=self.fn,
        meta_regularizer_weight=(self.meta_weight if self.on_meta_objective
                                 else None),
        optimizee_regularizer_weight=(self.optimizee_weight
                                      if self.on_optimizee else None))


@dataclasses.dataclass(frozen=True)
class Imitation:
  """Imitation (multi-task) training: following a teacher's steps."""
  enabled: bool = setting(False, "Imitation (multi-task) training.",
                          flag="if_mt")
  ratio: float = setting(0.1, "Probability of an imitation iteration.",
                         flag="mt_ratio")
  teacher_steps: int = setting(1, "Teacher steps per learned step.",
                               flag="mt_k")
  teacher_name: str = "adam"
  teacher_learning_rate: float = 0.01


# The configs whose settings are flags of metarun.py, in the order defined.
FLAG_CONFIGS = (Schedule, MetaOptimizer, Evaluation, Data, Regularizer,
                Imitation)
