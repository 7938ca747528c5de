"""Wraps an existing TF1-style model (a function that builds a loss) as a Problem.

The original patched `tf.Variable` internals with `mock`, which cannot work on
TF2. Here two public hooks do the same job:

* discovery: the loss is built once under `tf.variable_creator_scope`, which
  records every variable the model creates and keeps it out of the trainable
  and global collections (so optimizer checkpoints never contain it);
* rebuild: `objective(parameters)` builds the loss again with every former
  trainable variable replaced by the supplied tensor. Variables made with
  `tf.get_variable` are matched by name through a custom getter; variables
  made with `tf.Variable(...)` directly are matched by creation order.
  Non-trainable variables ("constants") keep their discovered instances.
"""

import tensorflow.compat.v1 as tf

from problems import problem_generator


class ModelAdapter(problem_generator.Problem):
  """A problem whose parameters are the trainable variables of a model.

  Attributes:
    parameters: the discovered trainable variables (now non-trainable local
      variables), in creation order.
    constants: the discovered non-trainable variables.
  """

  def __init__(self, make_loss_and_init_fn):
    """Builds the model once to discover its variables.

    Args:
      make_loss_and_init_fn: function returning `(make_loss, make_init_fn)`:
        `make_loss()` builds the scalar loss; `make_init_fn(variables)` (or
        None) returns a function of a session that initializes `variables`.
    """
    self._make_loss, make_init_fn = make_loss_and_init_fn()
    self._created = _discover_variables(self._make_loss)
    self.parameters = [v for v, trainable, _ in self._created if trainable]
    self.constants = [v for v, trainable, _ in self._created if not trainable]
    all_variables = self.parameters + self.constants
    if make_init_fn is not None:
      init_fn = make_init_fn(all_variables)
    else:
      init_op = tf.variables_initializer(all_variables)
      init_fn = lambda sess: sess.run(init_op)
    tf.logging.debug("ModelAdapter parameters: %s; constants: %s",
                     [v.op.name for v in self.parameters],
                     [v.op.name for v in self.constants])
    super().__init__([], None, 0.0, init_fn=init_fn)

  def init_tensors(self, seed=None):
    return self.parameters

  def init_variables(self, seed=None):
    return self.parameters

  def objective(self, parameters, data=None, labels=None):
    """Rebuilds the loss with the parameters replaced by `parameters`."""
    if len(parameters) != len(self.parameters):
      raise ValueError("ModelAdapter expects %d parameters, got %d" %
                       (len(self.parameters), len(parameters)))
    replacement = {}
    by_name = {}
    index = 0
    for variable, trainable, via_getter in self._created:
      value = parameters[index] if trainable else variable
      index += int(trainable)
      replacement[id(variable)] = value
      if via_getter:
        by_name[variable.op.name] = value
    direct = [replacement[id(v)] for v, _, via_getter in self._created
              if not via_getter]
    direct_iter = iter(direct)

    def custom_getter(getter, name, *args, **kwargs):
      if name in by_name:
        return by_name[name]
      return getter(name, *args, **kwargs)

    def creator(next_creator, **kwargs):
      del next_creator, kwargs
      try:
        return next(direct_iter)
      except StopIteration:
        raise ValueError("the model created more variables than it did when "
                         "it was first built") from None

    scope = tf.get_variable_scope()
    with tf.variable_scope(scope, reuse=True, custom_getter=custom_getter):
      with tf.variable_creator_scope(creator):
        return self._make_loss()


def _discover_variables(make_loss):
  """Builds `make_loss()` once and records the variables it creates.

  Returns:
    A list of (variable, was_trainable, made_by_get_variable) in creation
    order. The variables are created non-trainable, in LOCAL_VARIABLES only.
  """
  created = []
  getter_names = set()

  def creator(next_creator, **kwargs):
    trainable = kwargs.get("trainable")
    trainable = True if trainable is None else bool(trainable)
    kwargs["trainable"] = False
    kwargs["collections"] = [tf.GraphKeys.LOCAL_VARIABLES]
    variable = next_creator(**kwargs)
    created.append((variable, trainable))
    return variable

  def recording_getter(getter, name, *args, **kwargs):
    getter_names.add(name)
    return getter(name, *args, **kwargs)

  with tf.name_scope("unused_graph"):
    with tf.variable_scope(tf.get_variable_scope(),
                           custom_getter=recording_getter):
      with tf.variable_creator_scope(creator):
        make_loss()
  return [(v, trainable, v.op.name in getter_names)
          for v, trainable in created]
