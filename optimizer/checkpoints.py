"""Finding, checking and restoring learned-optimizer checkpoints.

A checkpoint written by meta-training holds the meta-parameters (the global
variables under "LOL"), their RMSProp slots and the global step. Using a
trained optimizer restores only the meta-parameters: the user's variables and
the optimizer's per-variable state are left to the user's initialiser.

Drop-in use in a user's own tf.compat.v1 model:

  opt = checkpoints.load_learned_optimizer("runs/x/HierarchicalRNN_GRUCell_20_2")
  train_op = opt.minimize(loss)
  sess.run(tf.global_variables_initializer())  # also loads the meta-params

`load_learned_optimizer` points the meta-parameters' initialisers at the
checkpoint, so the ordinary initialiser loads them whenever it runs (the
original README warned that initialising after restoring undid the restore).
"""

import inspect
import os
import warnings

import tensorflow.compat.v1 as tf

from optimizer import checkpoint_files
from optimizer import settings
from optimizer import trainable_optimizer

OPTIMIZER_SCOPE = trainable_optimizer.OPTIMIZER_SCOPE


CheckpointError = checkpoint_files.CheckpointError


def available_checkpoints(directory):
  """The complete checkpoint prefixes (file names) in `directory`, sorted."""
  return checkpoint_files.listed(directory)


def resolve_checkpoint(path, restore_model_name=""):
  """The checkpoint prefix that `path` (and a file name) designate.

  Only `path` itself is read: a state file naming checkpoints elsewhere
  (absolute paths of a directory since moved or copied) is read by file
  name within the directory.

  Args:
    path: a checkpoint prefix (".../model.ckpt-0"), or a directory holding
      checkpoints (a log directory), or a directory with exactly one
      sub-directory holding checkpoints (a train_dir).
    restore_model_name: a checkpoint file name inside the directory; empty
      means the latest checkpoint of the directory.

  Returns:
    The checkpoint prefix.

  Raises:
    CheckpointError: nothing suitable there (the message says what exists).
  """
  if not restore_model_name and checkpoint_files.is_complete(path):
    return path
  if not os.path.isdir(path):
    if os.path.exists(path + ".index"):
      raise CheckpointError("%s: incomplete checkpoint (its .data file is "
                            "missing)" % path)
    raise CheckpointError("%s: no such checkpoint or directory" % path)
  directory = path
  if not _holds_checkpoint_files(directory):
    subdirectories = [os.path.join(path, d) for d in sorted(os.listdir(path))
                      if _holds_checkpoint_files(os.path.join(path, d))]
    if len(subdirectories) == 1:
      directory = subdirectories[0]
    elif len(subdirectories) > 1:
      raise CheckpointError(
          "%s: several log directories hold checkpoints (%s); name one" %
          (path, ", ".join(os.path.basename(d) for d in subdirectories)))
  if restore_model_name:
    candidate = checkpoint_files.readable(directory, restore_model_name)
    if candidate is not None:
      return candidate
    found = available_checkpoints(directory)
    raise CheckpointError(
        "no checkpoint %s in %s (%s)" %
        (restore_model_name, directory,
         "found: " + ", ".join(found) if found else "it holds no checkpoint"))
  latest = checkpoint_files.latest(directory)
  if latest is None:
    raise CheckpointError("%s holds no checkpoint" % directory)
  return latest


def _holds_checkpoint_files(directory):
  return os.path.isdir(directory) and any(
      f.endswith(".index") and not f.startswith(".")
      for f in os.listdir(directory))


def meta_variables(graph=None):
  """The meta-parameters in `graph` (default: the default graph)."""
  graph = graph or tf.get_default_graph()
  return [v for v in graph.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)
          if v.op.name.startswith(OPTIMIZER_SCOPE + "/")]


def check_compatible(path, variables, optional=()):
  """Checks that checkpoint `path` holds every variable with its shape.

  Every tensor of the checkpoint is read, so that a truncated or
  corrupted file fails here rather than in a later initialiser.

  Args:
    path: checkpoint prefix.
    variables: variables the checkpoint must hold, with their shapes.
    optional: variables it may lack (e.g. counters that older checkpoints
      do not have) but must hold with their shapes if it has them.

  Raises:
    CheckpointError: the checkpoint does not read back whole, or a
      variable is missing or has another shape; the message names the
      first few and says which settings to check.
  """
  stored = checkpoint_files.verify(path)
  missing, mismatched = [], []
  for var in list(variables) + list(optional):
    name = var.op.name
    shape = var.get_shape().as_list()
    if name not in stored:
      if var not in optional:
        missing.append(name)
    elif list(stored[name]) != shape:
      mismatched.append("%s is %s in the checkpoint, %s here" %
                        (name, list(stored[name]), shape))
  if not (missing or mismatched):
    return
  problems = []
  if mismatched:
    problems.append("shape mismatch: " + "; ".join(mismatched[:3]) +
                    (" (and %d more)" % (len(mismatched) - 3)
                     if len(mismatched) > 3 else ""))
  if missing:
    problems.append("%d variable(s) missing, e.g. %s" %
                    (len(missing), ", ".join(missing[:3])))
  raise CheckpointError(
      "%s does not fit this optimizer: %s. It was written by an optimizer "
      "with other settings (check --optimizer and the optimizer flags, or "
      "the log directory's optimizer.json)" % (path, "; ".join(problems)))


def restore_meta_parameters(sess, path, variables=None):
  """Restores the meta-parameters (only) from checkpoint `path` into `sess`.

  Args:
    sess: the session.
    path: checkpoint prefix.
    variables: the variables to restore (default: `meta_variables()` of the
      session's graph).

  Raises:
    CheckpointError: see `check_compatible`.
  """
  if variables is None:
    variables = meta_variables(sess.graph)
  if not variables:
    raise CheckpointError("the graph holds no learned-optimizer variables "
                          "(under %s/) to restore" % OPTIMIZER_SCOPE)
  check_compatible(path, variables)
  with sess.graph.as_default():
    saver = tf.train.Saver(variables)
  saver.restore(sess, path)


def recorded_settings(checkpoint_path):
  """The optimizer settings recorded next to a checkpoint, else defaults.

  Raises:
    ValueError: a damaged or wrongly hand-edited optimizer.json (the
      message names the file and the setting).
  """
  recorded = settings.load(os.path.dirname(checkpoint_path))
  return recorded if recorded is not None else settings.defaults()


def load_learned_optimizer(path, restore_model_name="", optimizer_settings=None,
                           random_seed=None, optimizer_kwargs=None,
                           **overrides):
  """Builds a learned optimizer whose meta-parameters come from a checkpoint.

  The optimizer is created in the default graph; the initialisers of its
  meta-parameters are redirected to the checkpoint, so running the usual
  `tf.global_variables_initializer()` (before or after any other set-up)
  loads them. No other variable is touched. To reload into a session whose
  variables are already initialised, call `restore_meta_parameters`.

  Args:
    path: checkpoint prefix, log directory or train_dir (see
      `resolve_checkpoint`).
    restore_model_name: a checkpoint file name in that directory (empty:
      the latest).
    optimizer_settings: dict of optimizer settings (`settings.FLAG_TABLE`
      names) for a checkpoint without optimizer.json; default: the original
      flags' defaults (which is what the published checkpoint needs). Where
      the log directory has optimizer.json, the file gives the settings the
      checkpoint was trained with and they are used: a setting given here
      (or in `overrides`) that contradicts one the optimizer is built from
      is ignored with a `UserWarning` naming it.
    random_seed: seed of the optimizer's random draws (HierarchicalRNN and
      CoordinatewiseRNN: the initial per-coordinate learning rates); None:
      unseeded.
    optimizer_kwargs: extra constructor arguments that are not settings,
      e.g. {"xla_apply": False} for HierarchicalRNN.
    **overrides: individual settings replacing those (as
      `optimizer_settings`).

  Returns:
    The optimizer (a `tf.compat.v1.train.Optimizer`), with the attribute
    `checkpoint_path` naming the checkpoint used.

  Raises:
    CheckpointError: no checkpoint there, it does not read back whole, or
      it does not fit the settings.
    ValueError: an unknown setting name, a damaged optimizer.json, or an
      `optimizer_kwargs` entry the constructor does not take or of another
      type than its default.
  """
  checkpoint_path = resolve_checkpoint(path, restore_model_name)
  requested = dict(optimizer_settings or {}, **overrides)
  values = settings.complete(requested)
  recorded = settings.load(os.path.dirname(checkpoint_path))
  if recorded is not None:
    contradicted = [name for name in settings.differences(recorded, values)
                    if name in requested]
    if contradicted:
      warnings.warn(
          "%s contradict%s %s, which records the settings the checkpoint was "
          "trained with; using %s" % (
              ", ".join("%s=%r" % (n, requested[n]) for n in contradicted),
              "s" if len(contradicted) == 1 else "",
              os.path.join(os.path.dirname(checkpoint_path),
                           settings.CONFIG_FILE),
              ", ".join("%s=%r" % (n, recorded[n]) for n in contradicted)),
          stacklevel=2)
    values = recorded
  before = set(v.op.name for v in meta_variables())
  spec = settings.optimizer_spec(values, random_seed)
  if optimizer_kwargs:
    _check_kwargs(spec.callable, optimizer_kwargs)
    spec = spec._replace(kwargs=dict(spec.kwargs, **optimizer_kwargs))
  optimizer = spec.build()
  created = [v for v in meta_variables() if v.op.name not in before]
  check_compatible(checkpoint_path, created)
  tf.train.init_from_checkpoint(
      checkpoint_path, {v.op.name: v for v in created})
  optimizer.checkpoint_path = checkpoint_path
  return optimizer


def _check_kwargs(constructor, kwargs):
  """Checks names and types of extra constructor arguments.

  Raises:
    ValueError: a name `constructor` does not take, or a value whose type
      differs from the default's (e.g. the string "no" for a bool).
  """
  parameters = inspect.signature(constructor).parameters
  for key, value in sorted(kwargs.items()):
    if key not in parameters:
      raise ValueError(
          "optimizer_kwargs: %s takes no argument %r (it takes %s)" %
          (constructor.__name__, key, ", ".join(sorted(parameters))))
    default = parameters[key].default
    if isinstance(default, bool):
      expected = (bool,)
    elif isinstance(default, (int, float)):
      expected = (int, float)
    elif isinstance(default, str):
      expected = (str,)
    else:
      continue
    if not isinstance(value, expected) or (
        expected != (bool,) and isinstance(value, bool)):
      raise ValueError(
          "optimizer_kwargs: %s=%r: expected a %s like the default %r" %
          (key, value, expected[0].__name__, default))
