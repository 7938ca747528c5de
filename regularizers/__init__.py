"""Flatness regularisers of the optimizee's loss (Yang et al. 2023).

Modules:
  hessian: Hessian-vector products and the curvature estimators (Hutchinson
    trace, power-iteration top eigenvalues, Lanczos / stochastic Lanczos
    quadrature).
  jacobian: the mean squared gradient ("jacob").
  registry: --reg_option names -> regulariser builders.
"""
