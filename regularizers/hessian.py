"""Hessian-vector products and curvature estimators of a loss.

Vectors are lists of tensors shaped like the parameters; <a, b> sums the
elementwise products over all tensors. H is the Hessian of the loss whose
gradients `grads` are, with respect to `params`; H v is computed by double
back-propagation, tf.gradients(grads, params, grad_ys=v).

Probe vectors are Rademacher (+-1) draws made by TF random ops, so every
session.run uses fresh probes (reproducible through the graph seed and
`seed`); `fixed_probes=True` reproduces the original, which drew them once
in NumPy and baked them into the graph as constants.

The Lanczos recurrence (`lanczos_recurrence`) is written once for any array
library: `lanczos` builds it from TF ops (differentiable, for meta-training's
regularisers), and `evaluation.flatness` runs it in NumPy on whole-data-set
Hessian-vector products.
"""

import numpy as np
import tensorflow.compat.v1 as tf

NORM_EPSILON = 1e-6


def inner(xs, ys):
  """<xs, ys>: the sum over tensors of the sums of elementwise products."""
  return tf.add_n([tf.reduce_sum(x * y) for x, y in zip(xs, ys)])


def normalize(vs):
  """vs / (||vs|| + 1e-6), as the original (never exactly unit length)."""
  norm = tf.sqrt(inner(vs, vs))
  return [v / (norm + NORM_EPSILON) for v in vs]


def orthonormalize(w, basis):
  """Modified Gram-Schmidt of `w` against `basis`, then `normalize`."""
  for v in basis:
    coefficient = inner(w, v)
    w = [wi - coefficient * vi for wi, vi in zip(w, v)]
  return normalize(w)


def dense_gradients(grads, params):
  """Gradients as dense tensors; None (unused parameter) becomes zeros."""
  return [tf.zeros_like(p) if g is None else tf.convert_to_tensor(g)
          for g, p in zip(grads, params)]


def hessian_vector_product(grads, params, vectors):
  """H v for the loss whose (dense) gradients are `grads`."""
  products = tf.gradients(grads, params, grad_ys=vectors)
  return [tf.zeros_like(p) if h is None else tf.convert_to_tensor(h)
          for h, p in zip(products, params)]


def flatten(vectors):
  """One rank-1 tensor: the tensors of `vectors` flattened and concatenated."""
  return tf.concat([tf.reshape(v, [-1]) for v in vectors], 0)


def unflatten(flat, shapes):
  """The inverse of `flatten`: a list of tensors of `shapes` (lists of ints)."""
  sizes = [int(np.prod(shape)) for shape in shapes]
  return [tf.reshape(piece, shape)
          for piece, shape in zip(tf.split(flat, sizes), shapes)]


def flat_hessian_vector_product_fn(grads, params):
  """A function flat v -> flat H v, over all parameters at once.

  The estimators that take many products in sequence (Lanczos) work on one
  flattened vector: an inner product is then two ops instead of two per
  tensor plus a sum, which keeps the graph, and the graph of its gradient in
  meta-training, several times smaller. The values are those of the
  per-tensor formulation up to the order of float32 summation.
  """
  shapes = _static_shapes(params)

  def product(flat):
    return flatten(hessian_vector_product(grads, params,
                                          unflatten(flat, shapes)))

  return product


def _static_shapes(params):
  shapes = [p.get_shape() for p in params]
  for shape in shapes:
    if not shape.is_fully_defined():
      raise ValueError("Hessian estimators need fully defined parameter "
                       "shapes, got %s" % shape)
  return [shape.as_list() for shape in shapes]


def rademacher_probe(params, seed=None, fixed_probes=False, rng=None):
  """A list of +-1 tensors shaped like `params`.

  Args:
    params: list of tensors with fully defined shapes.
    seed: op-level seed (fresh probes) or NumPy seed (fixed probes).
    fixed_probes: bake NumPy draws into the graph as constants (the
      original's behaviour: the same probe at every step and run).
    rng: `np.random.RandomState` for fixed probes (default: one from seed).
  """
  shapes = _static_shapes(params)
  if fixed_probes:
    rng = np.random.RandomState(seed) if rng is None else rng
    return [tf.constant(2. * rng.randint(0, 2, shape) - 1., tf.float32)
            for shape in shapes]
  probes = []
  for i, shape in enumerate(shapes):
    op_seed = None if seed is None else seed + i
    bits = tf.random.uniform(shape, 0, 2, dtype=tf.int32, seed=op_seed)
    probes.append(2. * tf.cast(bits, tf.float32) - 1.)
  return probes


def _probe_source(params, seed, fixed_probes):
  """A function returning successive probes (distinct per call)."""
  rng = np.random.RandomState(seed) if fixed_probes else None
  counter = [0]

  def draw():
    counter[0] += 1
    op_seed = None if seed is None else seed + 1000 * counter[0]
    return rademacher_probe(params, op_seed, fixed_probes, rng)

  return draw


def hutchinson_trace(grads, params, num_probes=10, seed=None,
                     fixed_probes=False):
  """Hutchinson's estimate of tr(H): the mean of <H z, z> over probes z.

  Args:
    grads: gradients of the loss with respect to `params`.
    params: list of parameter tensors (fully defined shapes).
    num_probes: number of Rademacher probes (the original's hessian_itrs).
    seed, fixed_probes: see `rademacher_probe`.

  Returns:
    A scalar tensor.
  """
  grads = dense_gradients(grads, params)
  draw = _probe_source(params, seed, fixed_probes)
  estimates = []
  for _ in range(num_probes):
    z = draw()
    estimates.append(inner(hessian_vector_product(grads, params, z), z))
  return tf.add_n(estimates) / float(num_probes)


def top_eigenvalues(grads, params, num_iters=10, top_n=1, seed=None):
  """Eigenvalues of largest magnitude by power iteration with deflation.

  For each of `top_n` eigenpairs: start from a fresh Gaussian vector, then
  `num_iters` times re-orthonormalise against the eigenvectors already
  found, multiply by H and take the Rayleigh quotient, as the original.

  Returns:
    (eigenvalues, eigenvectors): a list of `top_n` scalar tensors and a list
    of `top_n` vectors (lists of tensors).
  """
  grads = dense_gradients(grads, params)
  shapes = _static_shapes(params)
  eigenvalues, eigenvectors = [], []
  for n in range(top_n):
    v = normalize([tf.random.normal(shape, seed=None if seed is None
                                    else seed + 100 * n + i)
                   for i, shape in enumerate(shapes)])
    value = None
    for _ in range(num_iters):
      v = orthonormalize(v, eigenvectors)
      hv = hessian_vector_product(grads, params, v)
      value = inner(hv, v)
      v = normalize(hv)
    eigenvalues.append(value)
    eigenvectors.append(v)
  return eigenvalues, eigenvectors


def top_eigenvalue_sum(grads, params, num_iters=10, top_n=1, seed=None):
  """The "hessian-ev" regulariser: the sum of the `top_n` eigenvalues."""
  values, _ = top_eigenvalues(grads, params, num_iters, top_n, seed)
  return tf.add_n(values)


def lanczos_recurrence(product, start, num_steps, dot, sqrt,
                       breakdown=None):
  """The Lanczos recurrence, written once for any array library.

  With full re-orthogonalisation as the original: v_0 = normalize(start),
  alpha_i = <H v_i, v_i>, w = H v_i - alpha_i v_i - beta_i v_{i-1};
  beta_{i+1} = ||w|| of that raw residual, and v_{i+1} is w after modified
  Gram-Schmidt against every earlier v, divided by (its norm + 1e-6) as
  `normalize` does. Vector arithmetic uses the ordinary operators, so the
  same code builds TF ops (meta-training's regulariser, differentiable) or
  computes NumPy arrays (evaluation-time curvature, `evaluation.flatness`).

  Args:
    product: function of a vector returning H times it (rank-1 tensors or
      arrays, all of one length).
    start: the starting vector (need not be normalised).
    num_steps: number of alphas to compute (>= 1).
    dot: function (a, b) -> scalar inner product in the same library.
    sqrt: the library's square root of a scalar.
    breakdown: optional function (beta, alphas, betas) -> bool of the new
      beta and the coefficients so far, asked before every step after the
      first; True ends the recurrence early (the Krylov space is exhausted).
      It needs concrete values, so only eager (NumPy) callers can pass it.

  Returns:
    (alphas, betas): Python lists of scalars, len(betas) == len(alphas) - 1;
    len(alphas) is num_steps unless `breakdown` ended it early.
  """

  def normalize_vector(x):
    return x / (sqrt(dot(x, x)) + NORM_EPSILON)

  v = normalize_vector(start)
  basis = [v]
  hv = product(v)
  alphas = [dot(hv, v)]
  betas = []
  w = hv - alphas[0] * v
  for _ in range(1, num_steps):
    beta = sqrt(dot(w, w))
    if breakdown is not None and breakdown(beta, alphas, betas):
      break
    betas.append(beta)
    v_prev = basis[-1]
    for b in basis:
      w = w - dot(w, b) * b
    v = normalize_vector(w)
    basis.append(v)
    hv = product(v)
    alpha = dot(hv, v)
    alphas.append(alpha)
    w = hv - alpha * v - beta * v_prev
  return alphas, betas


def lanczos(grads, params, num_steps=10, seed=None, fixed_probes=False):
  """Lanczos tridiagonalisation of H from a Rademacher start.

  `lanczos_recurrence` in TF ops (see there for the recurrence). The
  vectors are flattened over all parameters (see
  `flat_hessian_vector_product_fn`); the start is the probe
  `rademacher_probe` draws.

  Returns:
    (alphas [num_steps], betas [num_steps - 1]): the diagonal and
    off-diagonal of the tridiagonal matrix T.
  """
  grads = dense_gradients(grads, params)
  product = flat_hessian_vector_product_fn(grads, params)
  start = flatten(rademacher_probe(params, seed, fixed_probes))
  alphas, betas = lanczos_recurrence(
      product, start, num_steps, dot=lambda a, b: tf.reduce_sum(a * b),
      sqrt=tf.sqrt)
  return tf.stack(alphas), (tf.stack(betas) if betas else tf.zeros([0]))


def tridiagonal(alphas, betas):
  """The symmetric tridiagonal matrix with diagonal alphas, off-diagonal
  betas."""
  return (tf.linalg.diag(alphas) + tf.linalg.diag(betas, k=1) +
          tf.linalg.diag(betas, k=-1))


def slq_density(grads, params, num_steps=10, seed=None, fixed_probes=False):
  """Stochastic Lanczos quadrature of the Hessian's spectral density.

  Returns:
    (ritz_values [num_steps], weights [num_steps]): the eigenvalues of T
    and the squared first components of its eigenvectors; the weights sum to
    one and sum_k w_k delta(x - ritz_k) estimates the spectral density of H
    normalised by its dimension.
  """
  alphas, betas = lanczos(grads, params, num_steps, seed, fixed_probes)
  ritz_values, vectors = tf.linalg.eigh(tridiagonal(alphas, betas))
  return ritz_values, tf.square(vectors[0, :])


def lanczos_trace(grads, params, num_steps=10, seed=None, fixed_probes=False):
  """The "hessian-esd" regulariser: the sum of the Ritz values.

  The original summed the eigenvalues of T, i.e. trace(T) = sum of the
  alphas, discarding the quadrature weights (no density is formed). Summing
  the alphas gives the same value without an eigen-decomposition and its
  ill-conditioned gradient.
  """
  alphas, _ = lanczos(grads, params, num_steps, seed, fixed_probes)
  return tf.reduce_sum(alphas)
