"""How far meta-training moved a variant's meta-parameters.

A run's meta-parameters start where `meta_training.loop.MetaTrainer` puts
them: TensorFlow's graph seed is `seed + draw`, and the optimizer's
variables are created right after the problem's in `build_meta_graph`.
`initial_values` rebuilds that graph for draw 0 and reads them, so the
distance from a checkpoint to its start can be measured without the run
having saved its start (which the original's runs never did).
"""

import numpy as np
import tensorflow.compat.v1 as tf

from meta_training import graph as graph_lib
from optimizer import settings


def initial_values(logdir, seed, problem_spec):
  """The meta-parameters a `metarun.py --seed=seed` run in `logdir` started
  from (its optimizer as recorded in `logdir/optimizer.json`).

  Args:
    logdir: the run's log directory.
    seed: its --seed.
    problem_spec: the `Spec` of its first problem draw.

  Returns:
    dict variable name -> array.
  """
  spec = settings.optimizer_spec(settings.complete(settings.load(logdir)))
  graph = tf.Graph()
  with graph.as_default():
    tf.set_random_seed(seed)
    meta_graph = graph_lib.build_meta_graph(problem_spec, spec)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      values = sess.run(meta_graph.meta_vars)
  return {v.op.name: value for v, value in zip(meta_graph.meta_vars, values)}


def checkpoint_values(prefix, names):
  """The values of variables `names` in the checkpoint `prefix`."""
  reader = tf.train.load_checkpoint(prefix)
  return {name: reader.get_tensor(name) for name in names}


def relative_change(values, start):
  """||values - start|| / ||start|| over all variables together."""
  names = sorted(start)
  moved = sum(float(np.sum(np.square(np.asarray(values[n], np.float64) -
                                     start[n]))) for n in names)
  size = sum(float(np.sum(np.square(np.asarray(start[n], np.float64))))
             for n in names)
  return float(np.sqrt(moved / size))
