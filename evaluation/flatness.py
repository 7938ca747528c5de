"""Flatness of the solution an optimizer found: whole-data-set curvature.

After an evaluation run, `measure` estimates the curvature of the
optimizee's loss on a whole data set (its training split, or a fixed subset
of it) at the parameters the optimizer reached:

  * the largest eigenvalue of the Hessian H, by Lanczos;
  * the trace of H, by Hutchinson's estimator with Rademacher probes;
  * the stochastic-Lanczos-quadrature (SLQ) spectral density of H: the Ritz
    values of the Lanczos matrix T and their weights, the squared first
    components of T's eigenvectors (the weights sum to one, and
    sum_k w_k delta(x - ritz_k) estimates the density of H's eigenvalues
    normalised by the number of parameters).

TF computes whole-data-set Hessian-vector products (`DataHessian`, in
chunks, with `regularizers.hessian`'s double back-propagation) in float32;
the Lanczos recurrence is `regularizers.hessian.lanczos_recurrence`, the
one meta-training's regulariser builds in-graph, here driven from NumPy in
float64 (`curvature`). `density` broadens the Ritz values into a curve for
plotting (`evaluation.plot.plot_hessian_spectra`).
"""

import collections

import numpy as np
import tensorflow.compat.v1 as tf

from regularizers import hessian

DEFAULT_CHUNK_SIZE = 1000
# The recurrence stops when a new beta falls below this fraction of the
# largest |alpha| or beta so far, or below hessian.NORM_EPSILON: the Krylov
# space is exhausted (H has fewer distinct eigenvalues than steps along the
# start vector), and what is left of the residual is float32 round-off of
# the products and the ~1e-6 that normalize's epsilon leaves. Below the
# epsilon, `normalize` would return vectors of norm under one half.
BREAKDOWN_TOLERANCE = 1e-5


class Curvature(collections.namedtuple("Curvature", [
    "top_eigenvalue", "trace", "ritz_values", "weights", "num_samples",
    "lanczos_steps", "num_probes", "trace_stderr"])):
  """Curvature estimates of a loss at one point (plain, JSON-serialisable).

  Attributes:
    top_eigenvalue: float, the largest Ritz value (the algebraically largest
      eigenvalue of H; Lanczos converges to it first).
    trace: float, Hutchinson's estimate of tr(H).
    trace_stderr: float, its standard error: the standard deviation of the
      per-probe estimates over sqrt(num_probes) (None for one probe).
    ritz_values: list of floats, ascending: the eigenvalues of T.
    weights: list of floats, the SLQ weight of each Ritz value (sum one).
    num_samples: int, the samples the loss averaged over (0: data-free).
    lanczos_steps: int, the Lanczos steps taken: the requested number, or
      fewer when it exceeded the number of parameters or the Krylov space
      was exhausted (then len(ritz_values) == lanczos_steps).
    num_probes: int, the Hutchinson probes averaged.
  """

  __slots__ = ()


class DataHessian(object):
  """v -> H v, for H the Hessian of a problem's loss on a whole data set.

  The problems' objectives are means over the batch, so the whole-data-set
  Hessian is the size-weighted mean of the chunks' Hessians:
  H v = sum over chunks c of (|c| / N) H_c v. Chunks of `chunk_size`
  samples bound the memory of the double back-propagation (conv nets). The
  objective must be a mean over independent samples (not true of
  `PooledConvNet` in batch-norm mode "train", or of the toy problems whose
  objective sums over the batch).

  Building adds ops to `sess.graph` (no variables): the objective on the
  pool's chunk, its gradient (by `tf.gradients`, without the problem's
  gradient noise) and `hessian.flat_hessian_vector_product_fn` on a
  flat-vector placeholder. Build one per graph and call it as often as
  needed.

  Attributes:
    shapes: list of the parameters' shapes (lists of ints).
    dimension: int, the number of scalar parameters.
    num_samples: int, N (0 for a data-free problem).
  """

  def __init__(self, sess, problem, params, pool=None, name="train",
               max_samples=None, chunk_size=DEFAULT_CHUNK_SIZE):
    """Builds the product's ops in `sess.graph`.

    Args:
      sess: a `tf.Session` whose graph holds `params` (not finalized).
      problem: `problems.problem_generator.Problem`.
      params: list of tf.Variables or tensors (fully defined shapes) at
        which the Hessian is taken.
      pool: an initialised `data_pool.DataPool` holding the data set under
        `name`, or None for a data-free problem, whose objective is
        `problem.objective(params)`.
      name: the data set's name in the pool.
      max_samples: int or None: use only the pool's first `max_samples`
        samples of the data set (a fixed random subset when the pool holds
        it shuffled).
      chunk_size: samples per session run.

    Raises:
      ValueError: chunk_size or max_samples is not positive, or a
        parameter's shape is not fully defined.
    """
    if chunk_size < 1:
      raise ValueError("chunk_size must be positive, got %d" % chunk_size)
    if max_samples is not None and max_samples < 1:
      raise ValueError("max_samples must be positive, got %d" % max_samples)
    self._sess = sess
    self._pool, self._name = pool, name
    self._chunk_size = int(chunk_size)
    self.num_samples = 0
    if pool is not None:
      self.num_samples = min(pool.sizes[name], max_samples or pool.sizes[name])
    with sess.graph.as_default(), tf.name_scope("flatness"):
      params = [tf.convert_to_tensor(p) for p in params]
      if pool is None:
        objective = problem.objective(params)
      else:
        objective = problem.objective(params, pool.data, pool.labels)
      grads = hessian.dense_gradients(tf.gradients(objective, params), params)
      product = hessian.flat_hessian_vector_product_fn(grads, params)
      self.shapes = [p.get_shape().as_list() for p in params]
      self.dimension = int(sum(np.prod(shape, dtype=np.int64)
                               for shape in self.shapes))
      self._vector = tf.placeholder(tf.float32, [self.dimension],
                                    name="vector")
      self._product = product(self._vector)

  def __call__(self, vector):
    """H `vector`: float64 array `(dimension,)` from a flat vector."""
    vector = np.asarray(vector, dtype=np.float32)
    if self._pool is None:
      return self._sess.run(self._product,
                            {self._vector: vector}).astype(np.float64)
    total = np.zeros(self.dimension, dtype=np.float64)
    for feed, size in self._pool.chunks(self._name, self._chunk_size,
                                        self.num_samples):
      feed[self._vector] = vector
      total += (size / float(self.num_samples) *
                self._sess.run(self._product, feed))
    return total


def rademacher(rng, shapes):
  """A flat +-1 float64 vector drawn per parameter shape from `rng`.

  The draws are those of `hessian.rademacher_probe(..., fixed_probes=True,
  rng=rng)`, flattened, so a NumPy Lanczos from `rademacher(
  np.random.RandomState(seed), shapes)` starts where `hessian.lanczos(...,
  seed, fixed_probes=True)` does.
  """
  return np.concatenate([(2. * rng.randint(0, 2, shape) - 1.).ravel()
                         for shape in shapes])


def lanczos(product, start, num_steps):
  """`hessian.lanczos_recurrence` in float64 NumPy, ending at breakdown.

  Args:
    product: function of a float64 vector returning H times it.
    start: float64 vector, the (unnormalised) start.
    num_steps: the most steps to take (capped at the dimension).

  Returns:
    (alphas, betas): float64 arrays of lengths k and k - 1, k <= num_steps.
  """
  num_steps = min(int(num_steps), len(start))

  def breakdown(beta, alphas, betas):
    scale = max(np.max(np.abs(alphas)), max(betas) if betas else 0.)
    return beta <= max(BREAKDOWN_TOLERANCE * scale, hessian.NORM_EPSILON)

  alphas, betas = hessian.lanczos_recurrence(
      product, np.asarray(start, dtype=np.float64), num_steps, dot=np.dot,
      sqrt=np.sqrt, breakdown=breakdown)
  return np.array(alphas, dtype=np.float64), np.array(betas, dtype=np.float64)


def spectrum(alphas, betas):
  """Ritz values (ascending) and SLQ weights of the tridiagonal T.

  A non-finite coefficient (the Hessian of a diverged run's parameters)
  gives NaN for every value and weight: there is no spectrum to report
  (and `np.linalg.eigh` fails to converge on such a T).
  """
  alphas = np.asarray(alphas, dtype=np.float64)
  betas = np.asarray(betas, dtype=np.float64)
  if not (np.all(np.isfinite(alphas)) and np.all(np.isfinite(betas))):
    return np.full(len(alphas), np.nan), np.full(len(alphas), np.nan)
  matrix = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
  ritz_values, vectors = np.linalg.eigh(matrix)
  return ritz_values, np.square(vectors[0, :])


def hutchinson(product, probes):
  """The mean of <z, H z> over the flat vectors `probes`, and its standard
  error (None for a single probe)."""
  samples = np.array([np.dot(z, product(z)) for z in probes])
  stderr = None
  if len(samples) > 1:
    stderr = float(np.std(samples, ddof=1) / np.sqrt(len(samples)))
  return float(np.mean(samples)), stderr


def curvature(product, shapes, lanczos_steps=30, num_probes=30, seed=0,
              num_samples=0):
  """Top eigenvalue, trace and SLQ spectrum of the operator `product`.

  Draws, from one `np.random.RandomState(seed)`, the Lanczos start and then
  the `num_probes` Hutchinson probes, all Rademacher vectors (`rademacher`).

  Args:
    product: function of a flat float64 vector returning H times it (a
      `DataHessian`, or a NumPy matrix's `dot`).
    shapes: list of the parameters' shapes; the vectors have their total
      size.
    lanczos_steps: the most Lanczos steps (>= 1; see `lanczos`).
    num_probes: Hutchinson probes (>= 1).
    seed: seed of the probes.
    num_samples: stored in the result as is.

  Returns:
    `Curvature`.

  Raises:
    ValueError: lanczos_steps or num_probes is below one.
  """
  if lanczos_steps < 1 or num_probes < 1:
    raise ValueError("lanczos_steps and num_probes must be positive, got "
                     "%d and %d" % (lanczos_steps, num_probes))
  rng = np.random.RandomState(seed)
  alphas, betas = lanczos(product, rademacher(rng, shapes), lanczos_steps)
  ritz_values, weights = spectrum(alphas, betas)
  trace, trace_stderr = hutchinson(product, [rademacher(rng, shapes)
                               for _ in range(num_probes)])
  return Curvature(
      top_eigenvalue=float(ritz_values[-1]), trace=trace,
      ritz_values=[float(x) for x in ritz_values],
      weights=[float(w) for w in weights], num_samples=int(num_samples),
      lanczos_steps=len(alphas), num_probes=int(num_probes),
      trace_stderr=trace_stderr)


def measure(sess, problem, params, pool=None, name="train",
            lanczos_steps=30, num_probes=30, max_samples=None,
            chunk_size=DEFAULT_CHUNK_SIZE, seed=0):
  """Curvature of `problem`'s loss on a whole data set at `params`.

  The loss is problem.objective(params, data, labels) averaged over every
  sample of the pool's data set `name` (or its first `max_samples`: a fixed
  random subset when the pool holds it shuffled); its Hessian-vector
  products are run in chunks (`DataHessian`, which adds a few ops, no
  variables, to sess.graph on every call), and `curvature` drives Lanczos
  and Hutchinson from NumPy. Each of the lanczos_steps + num_probes products
  is one pass over the data.

  Args:
    sess: `tf.Session` whose graph holds `params`; its variables hold the
      point to measure.
    problem: `problems.problem_generator.Problem`.
    params: list of tf.Variables or tensors (fully defined shapes).
    pool: an initialised `data_pool.DataPool`, or None for a data-free
      problem.
    name: the data set's name in the pool (the optimizee's training data).
    lanczos_steps: the most Lanczos steps (capped at the number of
      parameters; fewer when the Krylov space is exhausted).
    num_probes: Hutchinson probes.
    max_samples: int or None: measure on the first this many samples.
    chunk_size: samples per session run (bounds memory).
    seed: seed of the Lanczos start and the probes.

  Returns:
    `Curvature` of plain Python numbers.
  """
  product = DataHessian(sess, problem, params, pool, name, max_samples,
                        chunk_size)
  return curvature(product, product.shapes, lanczos_steps, num_probes, seed,
                   product.num_samples)


def density(ritz_values, weights, grid, width):
  """The SLQ spectral density broadened by Gaussians, on `grid`.

  sum_k w_k N(x; ritz_k, width^2) at every x of `grid`: with weights summing
  to one it integrates to one over a grid that covers the Ritz values with a
  few widths to spare.

  Args:
    ritz_values: sequence of K floats.
    weights: sequence of K floats.
    grid: sequence of G floats (eigenvalue axis).
    width: positive float, the Gaussians' standard deviation.

  Returns:
    float64 array `(G,)`.
  """
  if width <= 0:
    raise ValueError("width must be positive, got %r" % (width,))
  ritz_values = np.asarray(ritz_values, dtype=np.float64)[:, None]
  weights = np.asarray(weights, dtype=np.float64)[:, None]
  grid = np.asarray(grid, dtype=np.float64)[None, :]
  gaussians = np.exp(-0.5 * np.square((grid - ritz_values) / width))
  return np.sum(weights * gaussians, axis=0) / (width * np.sqrt(2. * np.pi))
