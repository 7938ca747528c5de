"""Evaluating optimizers: how well they train fresh optimizees.

Modules:
  campaign: `run`, a whole evaluation (metatest.py's): every optimizer,
    grid point, problem and seed, the result files and the table.
  config: the campaign's settings (each a flag of metatest.py).
  optimizers: the evaluated optimizers, their grids and checkpoints.
  runner: `test_optimizer`, one optimisation run of a problem.
  baselines: the hand-designed optimizers learned ones are compared with.
  tuning: hyper-parameter grids and the choice among their points.
  metrics, flatness: held-out loss and accuracy; the Hessian's curvature.
  summary, report: per-seed and aggregated statistics, result files, the
    table and comparison.md.
  plot: the figures (needs matplotlib, optional).
"""
