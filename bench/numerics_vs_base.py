"""Numerics of this checkout against another (e.g. the code before a change).

For a few HierarchicalRNN configurations, a child process per checkout (cwd =
that checkout, importing its code) runs from the same seeds and data:
  * 50 apply-mode steps (`minimize`) on a small 2-layer MLP and on a
    quadratic, recording the variables (and the true parameters) every 10
    steps;
  * one meta-training unroll of the MLP: its meta-objective, the
    objectives and the meta-gradients (tf.gradients of the meta-objective
    with respect to the variables under "LOL").
The parent prints, per configuration, the largest difference relative to the
largest entry of each array (parameters, objectives, gradients).

Usage:
  python bench/numerics_vs_base.py --base=/work/base [--configs=entry,...]
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

CONFIGS = {
    "entry": ({}, None),
    "attention": ({"use_attention": True}, None),
    "one_level": ({}, [10]),
    "fixed_output_scale": ({"dynamic_output_scale": False,
                            "use_relative_lr": False}, None),
}
APPLY_STEPS = 50
UNROLL_LENGTH = 5


def _optimizer(config):
  from optimizer import settings  # pylint: disable=g-import-not-at-top
  values, level_sizes = CONFIGS[config]
  spec = settings.optimizer_spec(settings.complete(values), random_seed=7)
  if level_sizes is not None:
    spec = spec._replace(args=(level_sizes,))
  return spec.build()


def _mlp():
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  from problems import problem_generator as pg  # pylint: disable=g-import-not-at-top
  return pg.FullyConnected(8, 3, hidden_sizes=(6,), activation=tf.nn.sigmoid,
                           random_seed=0)


def _apply(config, model, results):
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  from problems import problem_generator as pg  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(0)
  with tf.Graph().as_default():
    tf.set_random_seed(1)
    problem = _mlp() if model == "mlp" else pg.Quadratic(10, random_seed=0)
    data = tf.constant(rng.randn(32, 8).astype(np.float32))
    labels = tf.constant(rng.randint(0, 3, 32).astype(np.int32))
    variables = [tf.Variable(0.3 * rng.randn(*s).astype(np.float32))
                 for s in problem.param_shapes]
    optimizer = _optimizer(config)
    train_op = optimizer.minimize(problem.objective(variables, data, labels),
                                  var_list=variables)
    true_params = optimizer.true_parameters(variables)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      for step in range(1, APPLY_STEPS + 1):
        sess.run(train_op)
        if step % 10 == 0:
          for t, (var, true) in enumerate(zip(*sess.run(
              [variables, true_params]))):
            results["params/%s/%d/%d" % (model, step, t)] = var
            results["params/%s/%d/%d/true" % (model, step, t)] = true


def _field(out, name, old_name):
  """An unroll output's field by its name, or its name before the rename."""
  return getattr(out, name) if hasattr(out, name) else getattr(out, old_name)


def _build_unroll(optimizer, problem):
  """The checkout's unroll: meta_training.unroll, or before it moved there
  (issue 29), the optimizer's `train`."""
  try:
    from meta_training import unroll  # pylint: disable=g-import-not-at-top
  except ImportError:
    return optimizer.train(problem)
  return unroll.build_unroll(optimizer, problem)


def _meta(config, results):
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(1)
  with tf.Graph().as_default():
    tf.set_random_seed(1)
    problem = _mlp()
    optimizer = _optimizer(config)
    out = _build_unroll(optimizer, problem)
    meta_vars = sorted((v for v in tf.trainable_variables()
                        if v.op.name.startswith("LOL/")),
                       key=lambda v: v.op.name)
    meta_objective = _field(out, "meta_objective", "metaobj")
    grads = tf.gradients(meta_objective, meta_vars)
    pairs = [(v.op.name, g) for v, g in zip(meta_vars, grads)
             if g is not None]
    feed = {_field(out, "objective_weights", "obj_weights"):
                np.ones(UNROLL_LENGTH) / UNROLL_LENGTH,
            out.first_unroll: True, out.reset_state: True,
            out.mini_data: rng.randn(40, 8).astype(np.float32),
            out.mini_labels: rng.randint(0, 3, 40).astype(np.int32),
            out.batches: rng.randint(0, 40, (UNROLL_LENGTH, 8)).astype(
                np.int32)}
    feed.update(zip(_field(out, "initial_params", "init_tensors"),
                    [0.3 * rng.randn(*s).astype(np.float32)
                     for s in problem.param_shapes]))
    with tf.Session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      meta, objectives, values = sess.run(
          [meta_objective, out.problem_objectives,
           [g for _, g in pairs]], feed)
  results["objective/meta"] = np.array(meta)
  results["objective/problem"] = objectives
  for (name, _), value in zip(pairs, values):
    results["gradient/" + name] = value


def child(config, path):
  sys.path.insert(0, os.getcwd())
  import graph_mode  # pylint: disable=g-import-not-at-top
  graph_mode.enable()
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  tf.logging.set_verbosity(tf.logging.ERROR)
  results = {}
  for model in ("mlp", "quadratic"):
    _apply(config, model, results)
  _meta(config, results)
  np.savez(path, **results)


def _run(tree, config, folder):
  path = os.path.join(folder, "%s_%s.npz" % (config, abs(hash(tree))))
  result = subprocess.run(
      [sys.executable, os.path.abspath(__file__), "--child", config, path],
      cwd=tree, capture_output=True, text=True, check=False)
  if result.returncode:
    sys.exit("child %s in %s failed:\n%s" % (config, tree,
                                             result.stderr[-3000:]))
  return dict(np.load(path))


def _relative(a, b):
  return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def main():
  if len(sys.argv) == 4 and sys.argv[1] == "--child":
    child(sys.argv[2], sys.argv[3])
    return
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--base", required=True, help="the other checkout")
  parser.add_argument("--configs", default=",".join(CONFIGS))
  args = parser.parse_args()
  here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  print("max |new - base| / max |base| per array, largest per group")
  print("%-20s %12s %12s %12s %12s" % ("config", "params", "true params",
                                      "objectives", "gradients"))
  with tempfile.TemporaryDirectory() as folder:
    for config in args.configs.split(","):
      base = _run(os.path.abspath(args.base), config, folder)
      new = _run(here, config, folder)
      if sorted(base) != sorted(new):
        sys.exit("%s: different outputs: %s" % (
            config, sorted(set(base) ^ set(new))))
      groups = {"params": [], "true": [], "objective": [], "gradient": []}
      for key in base:
        group = ("true" if key.endswith("/true") else key.split("/")[0])
        groups[group].append(_relative(new[key], base[key]))
      print("%-20s %12.2e %12.2e %12.2e %12.2e" % (
          config, max(groups["params"]), max(groups["true"]),
          max(groups["objective"]), max(groups["gradient"])))


if __name__ == "__main__":
  main()
