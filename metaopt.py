"""Meta-training of learned optimizers: `train_optimizer`.

One meta-iteration optimises a freshly initialised optimizee for a number of
partial unrolls; after each unroll the meta-parameters (the optimizer's
variables under "LOL") take one RMSProp step on the unroll's meta-objective
and the optimizee/optimizer state is carried to the next unroll. Periodic
evaluation runs trajectories without meta-updates and keeps the best
meta-parameters in `model.ckpt-0`.

The parts live in `meta_training/`: `config` (the settings), `schedule`
(unroll schedules), `data`, `graph` (the meta-graph), `session` (start,
lock, save), `evaluation`, `loop` (the meta-iterations), `roles` (one
process or a cluster's workers), `curriculum`, `teacher` and `cluster`.
Library code: every setting is an explicit argument (metarun.py builds the
configs from the original's flags).
"""

import sys

from evaluation import runner
from meta_training import config
from meta_training import data as data_lib
from meta_training import loop
from meta_training import roles
from meta_training import session
from run_control import interrupts

# The original's evaluation routine lives with the other evaluation code.
test_optimizer = runner.test_optimizer
open_log_directory = session.open_log_directory


class RunInterrupted(interrupts.Interrupted):
  """SIGINT/SIGTERM during meta-training, with where the run stood.

  Attributes:
    meta_iteration: the meta-iteration under way (1-based).
    total: meta-iterations of the run.
    checkpoint: the prefix a rerun resumes from, or None.
  """

  def __init__(self, signum, meta_iteration, total, checkpoint):
    super().__init__(signum)
    self.meta_iteration = meta_iteration
    self.total = total
    self.checkpoint = checkpoint


def train_optimizer(logdir, optimizer_spec, problems_and_data, schedule=None,
                    meta_optimizer=None, evaluation=None, data=None,
                    regularizer=None, imitation=None, seed=None, role=None,
                    out=sys.stdout):
  """Meta-trains the optimizer of `optimizer_spec` on `problems_and_data`.

  Each problem draw gets its own graph and session; the meta-parameters
  carry over between draws through the checkpoints (one process) or the
  parameter servers (a cluster). A run started again in `logdir` resumes
  from its latest complete checkpoint.

  Args:
    logdir: folder of the checkpoints (`model.ckpt-N`, best: `model.ckpt-0`)
      and TensorBoard events.
    optimizer_spec: `problem_spec.Spec` of a TrainableOptimizer.
    problems_and_data: list of (problem Spec, Dataset or None, batch size);
      a `datasets.Splits` in place of the Dataset trains on its `train`
      part and, with `data.meta_objective_split` "validation", measures the
      meta-objective on its `validation` part.
    schedule, meta_optimizer, evaluation, data, regularizer, imitation: the
      `meta_training.config` objects of those names (None: the defaults).
    seed: seeds NumPy and Python draws of this run (None: unseeded, as the
      original).
    role: a `roles` object: `roles.SingleProcess()` (None), or
      `roles.for_worker(cluster.Worker(...))` for a cluster's worker.
    out: stream for progress lines.

  Returns:
    The best evaluation cost seen (inf if none).

  Raises:
    ValueError: a validation meta-objective for a problem without a
      validation part (before anything is written).
  """
  settings = loop.Settings(
      schedule or config.Schedule(), meta_optimizer or config.MetaOptimizer(),
      evaluation or config.Evaluation(), data or config.Data(),
      regularizer or config.Regularizer(), imitation or config.Imitation())
  for spec, dataset, _ in problems_and_data:
    data_lib.training_parts(dataset, settings.data.meta_objective_split, spec)
  role = role or roles.SingleProcess()
  trainer = loop.MetaTrainer(logdir, optimizer_spec, settings, seed, role,
                             out)
  held = role.open_log_directory(logdir, trainer.log)
  try:
    start_checkpoint = role.latest_checkpoint(logdir, trainer.log)
    draws = data_lib.draw_problems(
        problems_and_data, settings.schedule.num_problems,
        settings.schedule.random_problems, trainer.py_rng)
    trainer.open_summaries()
    for draw, entry in enumerate(draws):
      last_graph = trainer.train_draw(draw, entry, len(draws),
                                      start_checkpoint if draw == 0 else None)
    role.finish(*last_graph, logdir, trainer.total, trainer.log)
  except interrupts.Interrupted as e:
    raise RunInterrupted(e.signum, min(trainer.done_now + 1, trainer.total),
                         trainer.total,
                         role.resume_checkpoint(logdir)) from None
  finally:
    trainer.close_summaries()
    if held is not None:
      held.release()
  role.report(logdir, trainer.best, trainer.log)
  trainer.report_movement(settings.meta_optimizer.learning_rate)
  return trainer.best
