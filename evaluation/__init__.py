"""Evaluating optimizers: how well they train fresh optimizees.

Modules:
  runner: `test_optimizer`, one optimisation run of a problem.
  baselines: the hand-designed optimizers learned ones are compared with.
  summary: per-seed and aggregated statistics, result files, the table.
  plot: the loss-curve figure (needs matplotlib, optional).
"""
