"""Optimizees: the `Problem` interface and every problem class of L2O-Scale.

A problem is a differentiable objective of a list of parameter tensors. The
learned optimizer never owns the parameters: it passes tensors (placeholders,
loop variables or variables) to `objective`, so one problem object can be
unrolled inside a `tf.while_loop`.

Numbers follow the original code, defects included where they define the
benchmark (e.g. DependencyChain's ndim * p0^2, Rastrigin's scaling, ReLU on
ConvNet logits); docs/fidelity.md lists every departure. All graph code is
`tf.compat.v1`; build problems inside a `tf.Graph`.
"""

import numbers

import numpy as np
import tensorflow.compat.v1 as tf

from problems import problem_spec

EPSILON = 1e-6
MAX_SEED = 4294967295
PARAMETER_SCOPE = "parameters"

_Spec = problem_spec.Spec


def _check_seed(random_seed):
  if random_seed is not None and (
      isinstance(random_seed, bool) or
      not isinstance(random_seed, numbers.Integral)):
    raise ValueError("random_seed must be an integer or None, got %r" %
                     (random_seed,))


class Problem(object):
  """Base class of the optimizees.

  Attributes:
    param_shapes: list of shape tuples, one per parameter tensor.
    random_seed: int seed of this problem's random data.
    noise_stdev: standard deviation of the Gaussian noise added to gradients.
    num_params: total number of scalar parameters.
    init_fn: function of a `tf.Session` run once before optimizing (used by
      `ModelAdapter`; a no-op otherwise).
    rng: `np.random.RandomState(random_seed)`, the source of the problem's
      random data.
  """

  def __init__(self, param_shapes, random_seed, noise_stdev, init_fn=None):
    """Creates the problem.

    Args:
      param_shapes: list of parameter shapes (tuples).
      random_seed: integer seed, or None to draw one from NumPy's global
        generator.
      noise_stdev: standard deviation of the gradient noise.
      init_fn: optional function of a session, run before optimizing.

    Raises:
      ValueError: `random_seed` is neither an integer nor None.
    """
    _check_seed(random_seed)
    if random_seed is None:
      random_seed = int(np.random.randint(MAX_SEED, dtype=np.int64))
    self.random_seed = int(random_seed)
    self.noise_stdev = noise_stdev
    # The original reseeded NumPy's global generator here; a private generator
    # draws the same numbers for the same seed without that side effect.
    self.rng = np.random.RandomState(self.random_seed)
    self.param_shapes = [tuple(shape) for shape in param_shapes]
    self.num_params = int(sum(np.prod(shape, dtype=np.int64)
                              for shape in self.param_shapes))
    self.init_fn = init_fn if init_fn is not None else (lambda _: None)

  def init_tensors(self, seed=None):
    """Initial values: one N(0, 1) tensor per parameter.

    Args:
      seed: op-level seed. As in the original, the same seed is used for every
        tensor, so same-shaped parameters start equal when it is set.

    Returns:
      A list of float32 tensors with the parameter shapes.
    """
    return [tf.random.normal(shape, seed=seed) for shape in self.param_shapes]

  def init_variables(self, seed=None):
    """Variables under the "parameters" scope holding `init_tensors(seed)`."""
    with tf.variable_scope(PARAMETER_SCOPE):
      return [tf.Variable(t) for t in self.init_tensors(seed)]

  def objective(self, parameters, data=None, labels=None):
    """The scalar float32 objective at `parameters` (list of tensors)."""
    raise NotImplementedError

  def gradients(self, objective, parameters):
    """Gradients of `objective`, plus N(0, noise_stdev^2) noise per entry.

    Args:
      objective: scalar tensor.
      parameters: list of tensors.

    Returns:
      A list of tensors (or `tf.IndexedSlices` for embedding lookups), one per
      parameter.
    """
    grads = tf.gradients(objective, list(parameters))
    if not self.noise_stdev:
      return grads
    return [_add_noise(g, self.noise_stdev) for g in grads]


def _add_noise(grad, stdev):
  if isinstance(grad, tf.IndexedSlices):
    values = grad.values + stdev * tf.random.normal(tf.shape(grad.values))
    return tf.IndexedSlices(values, grad.indices, grad.dense_shape)
  return grad + stdev * tf.random.normal(tf.shape(grad))


def _column(x):
  return tf.reshape(x, [-1, 1]) if x.get_shape().ndims == 1 else x


class Quadratic(Problem):
  """f(x) = 1/2 ||W x - y||^2 with random W (ndim x ndim) and y (ndim x 1)."""

  def __init__(self, ndim, random_seed=None, noise_stdev=0.0):
    super().__init__([(ndim, 1)], random_seed, noise_stdev)
    self.w = self.rng.randn(ndim, ndim).astype("float32")
    self.y = self.rng.randn(ndim, 1).astype("float32")

  def objective(self, parameters, data=None, labels=None):
    return tf.nn.l2_loss(tf.matmul(self.w, parameters[0]) - self.y)


class Lasso(Problem):
  """f(x) = 1/2 ||W x - y||^2 + lambda_ ||x||_1 with random W and y."""

  def __init__(self, ndim, lambda_=1, random_seed=None, noise_stdev=0.0):
    super().__init__([(ndim, 1)], random_seed, noise_stdev)
    self.lambda_ = lambda_
    self.w = self.rng.randn(ndim, ndim).astype("float32")
    self.y = self.rng.randn(ndim, 1).astype("float32")

  def objective(self, parameters, data=None, labels=None):
    x = parameters[0]
    return (tf.nn.l2_loss(tf.matmul(self.w, x) - self.y) +
            self.lambda_ * tf.reduce_sum(tf.abs(x)))


class Rastrigin(Problem):
  """The original's Rastrigin-like function with random a, b, c.

  As implemented (and trained on) originally:
    f(x) = ||a x - b||^2 / (2 ndim) - alpha c^T cos(2 pi x) + alpha ndim^2,
  not the textbook 1/2 ||a x - b||^2 - alpha c^T cos(2 pi x) + alpha ndim.
  """

  def __init__(self, ndim, alpha=10, random_seed=None, noise_stdev=0.0):
    super().__init__([(ndim, 1)], random_seed, noise_stdev)
    self.alpha = alpha
    self.ndim = ndim
    self.a = self.rng.randn(ndim, ndim).astype("float32")
    self.b = self.rng.randn(ndim, 1).astype("float32")
    self.c = self.rng.randn(ndim, 1).astype("float32")

  def objective(self, parameters, data=None, labels=None):
    x = parameters[0]
    residual = tf.norm(tf.matmul(self.a, x) - self.b, axis=-1)
    cos_term = tf.squeeze(tf.matmul(self.c, tf.cos(2 * np.pi * x),
                                    transpose_a=True))
    return tf.reduce_mean(0.5 * tf.square(residual) - self.alpha * cos_term +
                          self.alpha * self.ndim**2)


class Norm(Problem):
  """f(x) = (sum_i (|W x - y|_i + 1e-6)^p)^(1/p) with random W and y."""

  def __init__(self, ndim, random_seed=None, noise_stdev=0.0, norm_power=2.):
    super().__init__([(ndim, 1)], random_seed, noise_stdev)
    self.power = norm_power
    self.w = self.rng.randn(ndim, ndim).astype("float32")
    self.y = self.rng.randn(ndim, 1).astype("float32")

  def objective(self, parameters, data=None, labels=None):
    diff = tf.matmul(self.w, parameters[0]) - self.y
    total = tf.reduce_sum(tf.pow(tf.abs(diff) + EPSILON, self.power))
    return tf.pow(total, 1.0 / self.power)


class IsotropicQuadratic(Problem):
  """f(theta) = sum of squares of all parameters (no 1/2)."""

  def objective(self, parameters, data=None, labels=None):
    return tf.add_n([tf.reduce_sum(tf.square(p)) for p in parameters])


class Bowl(Problem):
  """f(x) = 1/2 ||A x||^2, A = sqrt(diag(condition_number, 1)) R(angle)."""

  def __init__(self, condition_number, angle=0.0, random_seed=None,
               noise_stdev=0.0):
    if condition_number <= 0:
      raise ValueError("condition_number must be positive, got %r" %
                       (condition_number,))
    super().__init__([(2, 1)], random_seed, noise_stdev)
    self.condition_number = condition_number
    self.angle = angle
    hessian = np.array([[condition_number, 0.], [0., 1.]], dtype="float32")
    rotation = np.array([[np.cos(angle), -np.sin(angle)],
                         [np.sin(angle), np.cos(angle)]])
    self.matrix = np.sqrt(hessian).dot(rotation)

  def objective(self, parameters, data=None, labels=None):
    return tf.nn.l2_loss(tf.matmul(self.matrix.astype("float32"),
                                   parameters[0]))

  def surface(self, xlim=5, ylim=5, n=50):
    """The objective on an n x n grid over [-xlim, xlim] x [-ylim, ylim].

    Returns:
      (xm, ym, zm): three (n, n) arrays.
    """
    xm, ym = _mesh(xlim, ylim, n)
    points = np.stack([xm.ravel(), ym.ravel()])
    zm = 0.5 * np.sum(self.matrix.dot(points)**2, axis=0)
    return xm, ym, zm.reshape(n, n)


class SoftmaxClassifier(Problem):
  """Base class of the classifiers; subclasses define `inference`.

  Labels are integer class ids, `(B,)` or `(B, 1)`. With two classes the loss
  is the sigmoid cross-entropy of the first logit column only (the original's
  binary branch; the second column gets no gradient); otherwise it is the
  softmax cross-entropy. The loss is the batch mean.
  """

  def init_tensors(self, seed=None):
    """N(0, 1) * 1.2 / sqrt(shape[0]) per parameter (the evaluation copy's
    scale, the one `init_tensors` is actually used with)."""
    return [tf.random.normal(shape, seed=seed) * 1.2 / np.sqrt(shape[0])
            for shape in self.param_shapes]

  def inference(self, params, data):
    """Logits `(B, n_classes)` for `data`."""
    raise NotImplementedError

  def objective(self, parameters, data=None, labels=None):
    logits = self.inference(parameters, data)
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    if logits.get_shape()[1] == 2:
      losses = tf.nn.sigmoid_cross_entropy_with_logits(
          labels=tf.cast(labels, tf.float32), logits=logits[:, 0])
    else:
      losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
          labels=labels, logits=logits)
    return tf.reduce_mean(losses)

  def argmax(self, logits):
    """Predicted class ids, int32 `(B,)`."""
    return tf.cast(tf.argmax(tf.nn.softmax(logits), 1), tf.int32)

  def accuracy(self, params, data, labels):
    """Fraction of samples whose predicted class equals the label."""
    predictions = self.argmax(self.inference(params, data))
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    return tf.reduce_mean(tf.cast(tf.equal(predictions, labels), tf.float32))


class SoftmaxRegression(SoftmaxClassifier):
  """Linear classifier: logits = X W + b. `activation` is stored, unused."""

  def __init__(self, n_features, n_classes, activation=tf.identity,
               random_seed=None, noise_stdev=0.0):
    self.activation = activation
    self.n_features = n_features
    super().__init__([(n_features, n_classes), (n_classes,)], random_seed,
                     noise_stdev)

  def inference(self, params, data):
    features = tf.reshape(data, (-1, self.n_features))
    return tf.matmul(features, params[0]) + params[1]


class SparseSoftmaxRegression(SoftmaxClassifier):
  """Sum of embeddings of integer ids, then a linear classifier.

  Parameters: embedding table E `(n_classes, n_features)` (ids lie in
  [0, n_classes)), weights `(n_features, n_classes)` and bias `(n_classes,)`.
  The gradient of E is a `tf.IndexedSlices`.
  """

  def __init__(self, n_features, n_classes, activation=tf.identity,
               random_seed=None, noise_stdev=0.0):
    self.activation = activation
    self.n_features = n_features
    super().__init__([(n_classes, n_features), (n_features, n_classes),
                      (n_classes,)], random_seed, noise_stdev)

  def inference(self, params, data):
    embedding, weights, bias = params
    ids = tf.cast(data, tf.int32)
    features = tf.reduce_sum(tf.nn.embedding_lookup(embedding, ids), 1)
    return tf.matmul(features, weights) + bias


class OneHotSparseSoftmaxRegression(SoftmaxClassifier):
  """`SparseSoftmaxRegression` computed with one-hot matmuls (dense grads)."""

  def __init__(self, n_features, n_classes, activation=tf.identity,
               random_seed=None, noise_stdev=0.0):
    self.activation = activation
    self.n_features = n_features
    self.n_classes = n_classes
    super().__init__([(n_classes, n_features), (n_features, n_classes),
                      (n_classes,)], random_seed, noise_stdev)

  def inference(self, params, data):
    embedding, weights, bias = params
    ids = tf.cast(data, tf.int32)
    n_ids = tf.shape(ids)[1]
    one_hot = tf.reshape(tf.one_hot(ids, self.n_classes), [-1, self.n_classes])
    embedded = tf.reshape(tf.matmul(one_hot, embedding),
                          [-1, n_ids, self.n_features])
    return tf.matmul(tf.reduce_sum(embedded, 1), weights) + bias


class _SmallInitClassifier(SoftmaxClassifier):
  """A classifier whose parameters all start i.i.d. N(0, 0.01^2)."""

  def init_tensors(self, seed=None):
    return [tf.random.normal(shape, stddev=0.01, seed=seed)
            for shape in self.param_shapes]


class FullyConnected(_SmallInitClassifier):
  """Multi-layer perceptron; logits are the last layer's pre-activation.

  Parameters are [W0, b0, W1, b1, ...] for the layer sizes
  `hidden_sizes + (n_classes,)`, all initialized N(0, 0.01^2).
  """

  def __init__(self, n_features, n_classes, hidden_sizes=(32, 64),
               activation=tf.nn.sigmoid, random_seed=None, noise_stdev=0.0):
    self.n_features = n_features
    self.activation = activation
    sizes = tuple(hidden_sizes) + (n_classes,)
    shapes = []
    prev = n_features
    for size in sizes:
      shapes += [(prev, size), (size,)]
      prev = size
    super().__init__(shapes, random_seed, noise_stdev)

  def inference(self, params, data):
    hidden = tf.reshape(data, (-1, self.n_features))
    for layer in range(0, len(params), 2):
      if layer:
        hidden = self.activation(hidden)
      hidden = tf.nn.bias_add(tf.matmul(hidden, params[layer]),
                              params[layer + 1])
    return hidden

  def accuracy(self, params, data, labels):
    """As the original, the activation is applied to the logits first."""
    predictions = self.argmax(self.activation(self.inference(params, data)))
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    return tf.reduce_mean(tf.cast(tf.equal(predictions, labels), tf.float32))


def _conv_shapes(n_channels, filter_list, with_biases):
  shapes = []
  in_channels = n_channels
  for spec in filter_list:
    kh, kw, out_channels = spec[:3]
    shapes.append((kh, kw, in_channels, out_channels))
    if with_biases:
      shapes.append((out_channels,))
    in_channels = out_channels
  return shapes


class ConvNet(_SmallInitClassifier):
  """Stride-1 "SAME" convolutions with biases, then a dense layer.

  The meta-training copy's network. `image_shape` is (channels, rows, cols)
  but data is NHWC. `filter_list` holds (kh, kw, out_channels) tuples. The
  activation is applied after every convolution and, as in the original, to
  the logits too. All parameters start N(0, 0.01^2).
  """

  conv_biases = True

  def __init__(self, image_shape, n_classes, filter_list,
               activation=tf.nn.relu, random_seed=None, noise_stdev=0.0):
    n_channels, px, py = image_shape
    self.image_shape = tuple(image_shape)
    self.activation = activation
    self.filter_list = list(filter_list)
    self.affine_size = filter_list[-1][2] * px * py
    shapes = _conv_shapes(n_channels, filter_list, self.conv_biases)
    shapes += [(self.affine_size, n_classes), (n_classes,)]
    super().__init__(shapes, random_seed, noise_stdev)

  def inference(self, params, data):
    layer = data
    for kernel, bias in zip(params[:-2:2], params[1:-2:2]):
      layer = tf.nn.conv2d(layer, kernel, [1, 1, 1, 1], "SAME")
      layer = self.activation(tf.nn.bias_add(layer, bias))
    flat = tf.reshape(layer, (-1, self.affine_size))
    return self.activation(tf.matmul(flat, params[-2]) + params[-1])


class ConvNetOrig(ConvNet):
  """Upstream L2O-Scale's network: `ConvNet` without conv biases and without
  the activation on the logits. Used by the evaluation set mnist_conv_orig."""

  conv_biases = False

  def inference(self, params, data):
    layer = data
    for kernel in params[:-2]:
      layer = self.activation(tf.nn.conv2d(layer, kernel, [1, 1, 1, 1], "SAME"))
    flat = tf.reshape(layer, (-1, self.affine_size))
    return tf.matmul(flat, params[-2]) + params[-1]


BATCH_NORM_EPSILON = 1e-3


class PooledConvNet(_SmallInitClassifier):
  """The evaluation copy's `ConvNet`: strided "VALID" convs, BN, max-pooling.

  Per filter: conv (stride s, "VALID") + bias -> batch normalization ->
  activation -> 2x2/2 max-pool; then a dense layer whose output also goes
  through the activation (the original's quirk: with ReLU the logits cannot
  be negative and training stalls, e.g. every optimizer sits at 39-48 % test
  accuracy on Fashion-MNIST). `logits_activation=False` makes the logits the
  dense layer's linear output instead. The stride s is the 4th entry of the
  *first* filter tuple (1 if absent) and applies to every layer, as in the
  original.

  Batch normalization has no learnable parameters here: the original created
  fresh, never-trained BN variables (gamma 1, beta 0, moving mean 0 and
  variance 1, epsilon 1e-3) on each objective call. In mode "test" (default)
  it is therefore the constant scale 1/sqrt(1 + 1e-3); in mode "train" it
  normalizes with the batch statistics.

  The original reshaped to a hard-coded batch of 128; here any batch works,
  and `affine_size` is checked against the shape arithmetic.

  Args:
    image_shape: (channels, rows, cols) of the input images (fed NHWC).
    n_classes: number of classes (logits per sample).
    filter_list: per conv layer (rows, cols, output channels[, stride]).
    activation: nonlinearity after each batch normalization (and on the
      logits when `logits_activation`).
    random_seed: seed of the initialization; see `Problem`.
    noise_stdev: standard deviation of the gradient noise; see `Problem`.
    affine_size: flattened size of the last pooled layer; must match.
    mode: "test" (constant batch-norm scale, the original) or "train" (batch
      statistics).
    logits_activation: apply `activation` to the logits too (True, the
      original's network, used by every set that mirrors the original);
      False gives linear logits (the held-out evaluation sets).
  """

  def __init__(self, image_shape, n_classes, filter_list,
               activation=tf.nn.relu, random_seed=None, noise_stdev=0.0,
               affine_size=512, mode="test", logits_activation=True):
    if mode not in ("test", "train"):
      raise ValueError("mode must be 'test' or 'train', got %r" % (mode,))
    n_channels, px, py = image_shape
    self.image_shape = tuple(image_shape)
    self.activation = activation
    self.logits_activation = logits_activation
    self.mode = mode
    self.stride = filter_list[0][3] if len(filter_list[0]) > 3 else 1
    rows, cols = px, py
    for kh, kw in (spec[:2] for spec in filter_list):
      rows = ((rows - kh) // self.stride + 1) // 2
      cols = ((cols - kw) // self.stride + 1) // 2
    computed = rows * cols * filter_list[-1][2]
    if affine_size != computed:
      raise ValueError("affine_size=%d does not match the network's flattened "
                       "output %d for image_shape %s and filters %s" %
                       (affine_size, computed, image_shape, filter_list))
    self.affine_size = affine_size
    shapes = _conv_shapes(n_channels, filter_list, with_biases=True)
    shapes += [(affine_size, n_classes), (n_classes,)]
    super().__init__(shapes, random_seed, noise_stdev)

  def _batch_norm(self, x):
    if self.mode == "train":
      mean, variance = tf.nn.moments(x, axes=[0, 1, 2])
      return (x - mean) * tf.math.rsqrt(variance + BATCH_NORM_EPSILON)
    return x * (1.0 / np.sqrt(1.0 + BATCH_NORM_EPSILON))

  def inference(self, params, data):
    strides = [1, self.stride, self.stride, 1]
    layer = data
    for kernel, bias in zip(params[:-2:2], params[1:-2:2]):
      layer = tf.nn.bias_add(tf.nn.conv2d(layer, kernel, strides, "VALID"),
                             bias)
      layer = self.activation(self._batch_norm(layer))
      layer = tf.nn.max_pool2d(layer, [1, 2, 2, 1], [1, 2, 2, 1], "VALID")
    flat = tf.reshape(layer, (-1, self.affine_size))
    logits = tf.matmul(flat, params[-2]) + params[-1]
    return self.activation(logits) if self.logits_activation else logits


class Problem2D(Problem):
  """Base of the two-dimensional test functions: one parameter of shape (2,)."""

  def __init__(self, random_seed=None, noise_stdev=0.0):
    super().__init__([(2,)], random_seed, noise_stdev)

  def objective(self, parameters, data=None, labels=None):
    x, y = tf.split(parameters[0], 2, axis=0)
    return tf.squeeze(self.function(x, y))

  def function(self, x, y):
    """The function of the two coordinates (tensors of shape (1,))."""
    raise NotImplementedError

  def surface(self, n=50, xlim=5, ylim=5):
    """The objective on an n x n grid, evaluated in a private graph.

    Returns:
      (xm, ym, zm): three (n, n) arrays.
    """
    xm, ym = _mesh(xlim, ylim, n)
    with tf.Graph().as_default():
      x = tf.placeholder(tf.float32, shape=xm.shape)
      y = tf.placeholder(tf.float32, shape=ym.shape)
      z = self.function(x, y)
      with tf.Session() as sess:
        zm = sess.run(z, feed_dict={x: xm, y: ym})
    return xm, ym, zm


class Rosenbrock(Problem2D):
  """(1 - x)^2 + 100 (y - x^2)^2; minimum 0 at (1, 1); init U[-5, 10)."""

  def init_tensors(self, seed=None):
    return [tf.random.uniform((2,), -5., 10., seed=seed)]

  def function(self, x, y):
    return tf.square(1 - x) + 100 * tf.square(y - tf.square(x))


class Saddle(Problem2D):
  """x^2 - y^2 (unbounded below)."""

  def function(self, x, y):
    return tf.square(x) - tf.square(y)


class LogSumExp(Problem2D):
  """log(e^(x+3y-0.1) + e^(x-3y-0.1) + e^(-x-0.1) + 1), without max-shift."""

  def function(self, x, y):
    return tf.math.log(tf.exp(x + 3. * y - 0.1) + tf.exp(x - 3. * y - 0.1) +
                       tf.exp(-x - 0.1) + 1.0)


class Ackley(Problem2D):
  """Ackley's function; minimum 0 at (0, 0); init U[-32.768, 32.768)."""

  def init_tensors(self, seed=None):
    return [tf.random.uniform((2,), -32.768, 32.768, seed=seed)]

  def function(self, x, y):
    return (-20 * tf.exp(-0.2 * tf.sqrt(0.5 * (tf.square(x) + tf.square(y)))) -
            tf.exp(0.5 * (tf.cos(2 * np.pi * x) + tf.cos(2 * np.pi * y))) +
            np.e + 20)


class Beale(Problem2D):
  """Beale's function; minimum 0 at (3, 0.5); init U[-4.5, 4.5)."""

  def init_tensors(self, seed=None):
    return [tf.random.uniform((2,), -4.5, 4.5, seed=seed)]

  def function(self, x, y):
    return (tf.square(1.5 - x + x * y) + tf.square(2.25 - x + x * y**2) +
            tf.square(2.625 - x + x * y**3))


class Booth(Problem2D):
  """(x + 2y - 7)^2 + (2x + y - 5)^2; minimum 0 at (1, 3); init U[-10, 10)."""

  def init_tensors(self, seed=None):
    return [tf.random.uniform((2,), -10., 10., seed=seed)]

  def function(self, x, y):
    return tf.square(x + 2 * y - 7) + tf.square(2 * x + y - 5)


class StyblinskiTang(Problem2D):
  """1/2 sum (z^4 - 16 z^2 + 5 z) + 80; minimum ~1.668; init U[-5, 5)."""

  def init_tensors(self, seed=None):
    return [tf.random.uniform((2,), -5., 5., seed=seed)]

  def function(self, x, y):
    return 0.5 * (x**4 - 16 * x**2 + 5 * x + y**4 - 16 * y**2 + 5 * y) + 80


class Matyas(Problem2D):
  """0.26 (x^2 + y^2) - 0.48 x y; minimum 0 at (0, 0); init U[-10, 10)."""

  def init_tensors(self, seed=None):
    return [tf.random.uniform((2,), -10, 10, seed=seed)]

  def function(self, x, y):
    return 0.26 * (tf.square(x) + tf.square(y)) - 0.48 * x * y


class Branin(Problem2D):
  """The standard Branin function; minimum ~0.397887 at (pi, 2.275) et al.

  Initialization: x ~ U[-5, 10), y ~ U[0, 15) from two ops with the same seed
  (as the original, so with a seed set, y = x + 5).
  """

  def init_tensors(self, seed=None):
    x = tf.random.uniform((1,), -5., 10., seed=seed)
    y = tf.random.uniform((1,), 0., 15., seed=seed)
    return [tf.concat([x, y], 0)]

  def function(self, x, y):
    a, r, s = 1., 6., 10.
    b = 5.1 / (4. * np.pi**2)
    c = 5. / np.pi
    t = 1. / (8. * np.pi)
    return a * tf.square(y - b * x**2 + c * x - r) + s * (1 - t) * tf.cos(x) + s


class Michalewicz(Problem2D):
  """2 - (sin x sin(x^2/pi)^10 + sin y sin(2 y^2/pi)^10); init U[0, pi)."""

  def init_tensors(self, seed=None):
    return [tf.random.uniform((2,), 0., np.pi, seed=seed)]

  def function(self, x, y):
    m = 5.
    return 2. - (tf.sin(x) * tf.sin(x**2 / np.pi)**(2 * m) +
                 tf.sin(y) * tf.sin(2 * y**2 / np.pi)**(2 * m))


class Rescale(Problem):
  """The inner problem seen in coordinates stretched by `scale`.

  objective(theta) = inner.objective(theta / scale); initial values are the
  inner problem's times `scale`.
  """

  def __init__(self, problem_spec, scale=10., noise_stdev=0.0):
    self.problem = problem_spec.build()
    self.scale = scale
    super().__init__(self.problem.param_shapes, None, noise_stdev)

  def init_tensors(self, seed=None):
    return [t * self.scale for t in self.problem.init_tensors(seed=seed)]

  def objective(self, parameters, data=None, labels=None):
    inner = [p / self.scale for p in parameters]
    return self.problem.objective(inner, data, labels)


class SumTask(Problem):
  """The sum of several problems over the concatenation of their parameters.

  As in the original, data and labels are not forwarded to the inner problems,
  and only this task's own `noise_stdev` is applied (the inner problems' noise
  settings have no effect).
  """

  def __init__(self, problem_specs, noise_stdev=0.0):
    self.problems = [spec.build() for spec in problem_specs]
    shapes = []
    for problem in self.problems:
      shapes.extend(problem.param_shapes)
    super().__init__(shapes, None, noise_stdev)

  def init_tensors(self, seed=None):
    tensors = []
    for problem in self.problems:
      tensors.extend(problem.init_tensors(seed=seed))
    return tensors

  def objective(self, parameters, data=None, labels=None):
    total = []
    start = 0
    for problem in self.problems:
      end = start + len(problem.param_shapes)
      total.append(problem.objective(parameters[start:end]))
      start = end
    return tf.add_n(total)


class LogObjective(Problem):
  """log(f + 1e-6) - log(1e-6) of the inner objective f; N(0, 1) init."""

  def __init__(self, problem_spec):
    self.problem = problem_spec.build()
    super().__init__(self.problem.param_shapes, None, 0.0)

  def objective(self, parameters, data=None, labels=None):
    inner = self.problem.objective(parameters, data, labels)
    return tf.math.log(inner + EPSILON) - tf.math.log(EPSILON)


class SparseProblem(Problem):
  """The inner problem with each gradient entry zeroed with `zero_probability`.

  A fresh mask is drawn on every run; surviving entries get the Gaussian
  gradient noise. Initialization is N(0, 1), not the inner problem's.
  """

  def __init__(self, problem_spec, zero_probability=0.99, random_seed=None,
               noise_stdev=0.0):
    self.problem = problem_spec.build()
    self.zero_prob = zero_probability
    super().__init__(self.problem.param_shapes, random_seed, noise_stdev)

  def objective(self, parameters, data=None, labels=None):
    return self.problem.objective(parameters, data, labels)

  def gradients(self, objective, parameters):
    grads = []
    for grad in tf.gradients(objective, list(parameters)):
      grad = tf.convert_to_tensor(grad)
      keep = tf.random.uniform(tf.shape(grad)) >= self.zero_prob
      noisy = grad + self.noise_stdev * tf.random.normal(tf.shape(grad))
      grads.append(tf.where(keep, noisy, tf.zeros_like(grad)))
    return grads


class DependencyChain(Problem):
  """f(p) = ndim p0^2 + sum_{i>=1} p_i^2 / (p_{i-1}^2 + 1e-6).

  The ndim factor is the original's broadcasting defect, kept because the
  objective defines the benchmark. Data is accepted and ignored.
  """

  def __init__(self, ndim, random_seed=None, noise_stdev=0.):
    super().__init__([(ndim + 1,)], random_seed, noise_stdev)
    self.ndim = ndim

  def objective(self, parameters, data=None, labels=None):
    p = parameters[0]
    ratios = tf.square(p[1:]) / (tf.square(p[:-1]) + EPSILON)
    return tf.reduce_sum(tf.square(p[0]) + ratios)


class MinMaxWell(Problem):
  """f(p) = max_i p_i^2 + 1 / min_i p_i^2 - 2 (+1e-12)."""

  def __init__(self, ndim, random_seed=None, noise_stdev=0.):
    super().__init__([(ndim,)], random_seed, noise_stdev)

  def objective(self, parameters, data=None, labels=None):
    squares = tf.square(parameters[0])
    return (tf.reduce_max(squares) + 1. / tf.reduce_min(squares) - 2. +
            1e-12)


class OutwardSnake(Problem):
  """A radial term 1/||p|| plus a data-weighted snake-shaped valley.

  f = sum_b data[b, 0] / (||p|| + 1e-6)
      + sum_b sum_{i>=1} ((p_i - pi cos p_{i-1}) data[b, i])^2.
  """

  def __init__(self, ndim, random_seed=None, noise_stdev=0.):
    super().__init__([(ndim,)], random_seed, noise_stdev)

  def objective(self, parameters, data, labels=None):
    p = parameters[0]
    radius = tf.sqrt(tf.reduce_sum(tf.square(p)))
    rad_loss = tf.reduce_sum(data[:, 0] / (radius + EPSILON))
    valley = p[1:] - np.pi * tf.cos(p[:-1])
    sin_loss = tf.reduce_sum(tf.square(valley * data[:, 1:]))
    return rad_loss + sin_loss


class ProjectionQuadratic(Problem):
  """f(p) = sum_b sum_i (p_i data[b, i])^2, p of shape (1, ndim)."""

  def __init__(self, ndim, random_seed=None, noise_stdev=0.):
    super().__init__([(1, ndim)], random_seed, noise_stdev)

  def objective(self, parameters, data, labels=None):
    return tf.reduce_sum(tf.square(parameters[0] * data))


class SumOfQuadratics(Problem):
  """f(p) = sum_b ||p - data_b||^2 - sum_b ||data_b||^2 (+1e-12).

  Zero at p = 0 only for zero-mean batches; mini-batches can go negative.
  """

  def __init__(self, ndim, random_seed=None, noise_stdev=0.):
    super().__init__([(1, ndim)], random_seed, noise_stdev)

  def objective(self, parameters, data, labels=None):
    return (tf.reduce_sum(tf.square(parameters[0] - data)) -
            tf.reduce_sum(tf.square(data)) + 1e-12)


class MatMulAlgorithm(Problem):
  """Learn a bilinear algorithm with k multiplications for n x n matmul.

  Parameters theta_a, theta_b `(n^2, k)`. For every pair of one-hot matrices
  (E_i, E_j) the k products of linear forms P = (vec(E_i) theta_a) *
  (vec(E_j) theta_b) are combined by the least-squares optimal theta_c into
  an estimate of vec(E_i E_j); the objective is the squared error. The
  least-squares solve uses an explicit inverse of P^T P, as the original.
  """

  def __init__(self, n, k):
    if not isinstance(n, int) or not isinstance(k, int):
      raise ValueError("n and k must be int, got %r and %r" % (n, k))
    if n < 2:
      raise ValueError("n must be at least 2, got %d" % n)
    if not n**2 <= k <= n**3:
      raise ValueError("k must lie in [n^2, n^3] = [%d, %d], got %d" %
                       (n**2, n**3, k))
    super().__init__([(n**2, k), (n**2, k)], None, 0.0)
    self.n = n
    self.k = k
    basis = np.eye(n**2).reshape(n**2, n, n)
    a_stack = np.repeat(basis, n**2, axis=0)
    b_stack = np.tile(basis, (n**2, 1, 1))
    c_stack = np.matmul(a_stack, b_stack)
    flat = lambda m: m.reshape(n**4, n**2).astype("float32")
    self.a = tf.constant(flat(a_stack), name="a")
    self.b = tf.constant(flat(b_stack), name="b")
    self.c = tf.constant(flat(c_stack), name="c")

  def init_tensors(self, seed=None):
    """N(0, 1) entries, each column normalized to unit L2 norm."""
    return [tf.math.l2_normalize(tf.random.normal(shape, seed=seed), axis=0)
            for shape in self.param_shapes]

  def objective(self, parameters, data=None, labels=None):
    theta_a, theta_b = parameters
    p = tf.matmul(self.a, theta_a) * tf.matmul(self.b, theta_b)
    p_trans = tf.transpose(p, name="p_trans")
    p_inv = tf.linalg.inv(tf.matmul(p_trans, p), name="p_inv")
    theta_c = tf.matmul(tf.matmul(p_inv, p_trans), self.c, name="theta_c")
    c_hat = tf.matmul(p, theta_c, name="c_hat")
    return tf.reduce_sum(tf.square(c_hat - self.c), name="loss")


def matmul_problem_sequence(n, k_min, k_max):
  """Problem-set entries MatMulAlgorithm(n, k) for k = k_min..k_max."""
  return [(_Spec(MatMulAlgorithm, (n, k), {}), None, None)
          for k in range(k_min, k_max + 1)]


def init_fixed_variables(arrays):
  """float32 variables under the "parameters" scope holding `arrays`."""
  with tf.variable_scope(PARAMETER_SCOPE):
    return [tf.Variable(np.asarray(a, dtype=np.float32)) for a in arrays]


def make_rosenbrock_loss_and_init(device=None):
  """Loss and init builders of a variable-based Rosenbrock for ModelAdapter.

  The loss builder creates variables x and y (default initializer) and a
  non-trainable constant c = 100, and returns (1 - x)^2 + c (y - x^2)^2.

  Returns:
    (make_loss, make_init_fn): `make_loss()` builds the scalar loss;
    `make_init_fn(variables)` returns a function of a session that
    initializes those variables.
  """

  def make_loss():
    with tf.name_scope("optimizee"), tf.device(device):
      x = tf.get_variable("x", [1])
      y = tf.get_variable("y", [1])
      c = tf.get_variable("c", [1], trainable=False,
                          initializer=tf.constant_initializer(100.0))
      return tf.squeeze(tf.square(1 - x) + c * tf.square(y - tf.square(x)))

  def make_init_fn(variables):
    with tf.device(device):
      init_op = tf.variables_initializer(variables)

    def init_fn(sess):
      sess.run(init_op)

    return init_fn

  return make_loss, make_init_fn


def _mesh(xlim, ylim, n):
  """np.meshgrid over [-xlim, xlim] x [-ylim, ylim] with n points each."""
  return np.meshgrid(np.linspace(-xlim, xlim, n), np.linspace(-ylim, ylim, n))
