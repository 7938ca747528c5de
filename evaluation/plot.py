"""The loss-curve figure of an evaluation (optional: needs matplotlib).

One panel per problem, one curve per optimizer: the mean over seeds of the
per-step minibatch loss, smoothed with a moving average, on a log scale,
with the range over seeds shaded.
"""

import numpy as np


def available():
  """Whether matplotlib can be imported."""
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return False
  return True


def smooth(values, window):
  """Trailing moving average (the first entries average what exists)."""
  values = np.asarray(values, dtype=np.float64)
  if window <= 1 or len(values) < 2:
    return values
  cumulative = np.cumsum(np.insert(values, 0, 0.))
  counts = np.minimum(np.arange(1, len(values) + 1), window)
  starts = np.arange(1, len(values) + 1) - counts
  return (cumulative[1:] - cumulative[starts]) / counts


def plot_loss_curves(path, curves, title=""):
  """Writes a PNG of the loss curves.

  Args:
    path: output file.
    curves: dict problem name -> dict optimizer name -> list of per-seed
      loss sequences (equal lengths).
    title: figure title.

  Returns:
    `path`, or None when matplotlib is not installed.
  """
  if not available():
    return None
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  figure, axes = pyplot.subplots(len(curves), 1, squeeze=False,
                                 figsize=(7, 4 * len(curves)))
  for axis, (problem, by_optimizer) in zip(axes[:, 0], curves.items()):
    for name, runs in by_optimizer.items():
      runs = np.asarray(runs, dtype=np.float64)
      window = max(1, runs.shape[1] // 200)
      smoothed = np.array([smooth(r, window) for r in runs])
      steps = np.arange(1, runs.shape[1] + 1)
      line, = axis.plot(steps, np.mean(smoothed, axis=0),
                        label="%s (%d seeds)" % (name, len(runs)))
      axis.fill_between(steps, np.min(smoothed, axis=0),
                        np.max(smoothed, axis=0), color=line.get_color(),
                        alpha=0.2)
    axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("minibatch loss (moving average)")
    axis.set_title(problem)
    axis.legend()
  if title:
    figure.suptitle(title)
  figure.tight_layout()
  figure.savefig(path, dpi=100)
  pyplot.close(figure)
  return path
