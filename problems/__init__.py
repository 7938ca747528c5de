"""Optimizees for learned optimizers: problem classes, problem sets and data sets.

Modules:
  problem_spec: `Spec`, a deferred constructor call for a problem.
  problem_generator: the `Problem` base class and every optimizee.
  datasets: data sets (MNIST, Fashion-MNIST, CIFAR-10 and synthetic generators).
  problem_sets: lists of (spec, dataset, batch_size) entries and their registries.
  model_adapter: wraps an existing TF1-style model graph as a `Problem`.
"""
