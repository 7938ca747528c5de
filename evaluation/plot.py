"""The figures of an evaluation (optional: need matplotlib).

Loss curves: one panel per problem, one curve per optimizer: the mean over
seeds of the per-step minibatch loss, smoothed with a moving average, on a
log scale, with the range over seeds shaded. Held-out curves: per problem,
training loss, test loss and test accuracy against the step. Hessian
spectra: one panel per optimizer, the SLQ spectral density of the Hessian at
the solutions found (`evaluation.flatness`), averaged over seeds, on a log
scale, with each seed's top eigenvalue marked.

Each figure is rendered in memory and written atomically, so a reader or an
interruption sees the old file or the new one, never half of one.
"""

import io
import os

import numpy as np

from evaluation import flatness
from run_control import atomic


def available():
  """Whether matplotlib can be imported."""
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return False
  return True


def _save(figure, path):
  """Writes `figure` to `path` (format from its extension) atomically."""
  buffer = io.BytesIO()
  figure.savefig(buffer, dpi=100,
                 format=os.path.splitext(path)[1][1:] or "png")
  atomic.write_bytes(path, buffer.getvalue())


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
  _save(figure, path)
  pyplot.close(figure)
  return path


# Panels of the held-out figure: (history key, y label, log scale).
HELDOUT_PANELS = (("train_loss", "training loss", True),
                  ("test_loss", "test loss", True),
                  ("test_accuracy", "test accuracy", False))


def plot_heldout_curves(path, curves, title=""):
  """Writes a PNG of loss and accuracy on the splits against the step.

  Args:
    path: output file.
    curves: dict problem name -> dict optimizer label -> list of per-seed
      histories (dicts with "steps" and the HELDOUT_PANELS keys, as
      `metrics.SplitMetrics.history`).
    title: figure title.

  Returns:
    `path`, or None when matplotlib is not installed.
  """
  if not available():
    return None
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  figure, axes = pyplot.subplots(len(curves), len(HELDOUT_PANELS),
                                 squeeze=False,
                                 figsize=(5 * len(HELDOUT_PANELS),
                                          3.8 * len(curves)))
  for row, (problem, by_optimizer) in zip(axes, curves.items()):
    for axis, (key, label, log_scale) in zip(row, HELDOUT_PANELS):
      for name, histories in by_optimizer.items():
        steps = np.asarray(histories[0]["steps"])
        values = np.asarray([h[key] for h in histories], dtype=np.float64)
        line, = axis.plot(steps, np.mean(values, axis=0),
                          label="%s (%d seeds)" % (name, len(histories)))
        axis.fill_between(steps, np.min(values, axis=0),
                          np.max(values, axis=0), color=line.get_color(),
                          alpha=0.2)
      if log_scale:
        axis.set_yscale("log")
      axis.set_xlabel("step")
      axis.set_ylabel(label)
      axis.set_title("%s: %s" % (problem, label))
    row[-1].legend()
  if title:
    figure.suptitle(title)
  figure.tight_layout()
  _save(figure, path)
  pyplot.close(figure)
  return path


# The Hessian-spectrum figure: Gaussian broadening of the Ritz values as a
# fraction of the plotted eigenvalue range, the floor (a fraction of the
# highest density plotted) that keeps the log axis finite where the density
# vanishes, and the number of grid points.
SPECTRUM_WIDTH_FRACTION = 0.01
SPECTRUM_FLOOR_FRACTION = 1e-6
SPECTRUM_GRID_POINTS = 1000


def spectrum_grid(spectra):
  """An eigenvalue grid covering every Ritz value, and the broadening width.

  Args:
    spectra: as for `plot_hessian_spectra`.

  Returns:
    (grid, width): SPECTRUM_GRID_POINTS floats spanning all the Ritz values
    with a margin of five widths on each side, and the Gaussians' width
    (SPECTRUM_WIDTH_FRACTION of the span of the Ritz values).
  """
  values = np.concatenate([np.asarray(ritz, dtype=np.float64)
                           for runs in spectra.values()
                           for ritz, _ in runs])
  low, high = float(np.min(values)), float(np.max(values))
  span = high - low if high > low else max(abs(high), 1.)
  width = SPECTRUM_WIDTH_FRACTION * span
  grid = np.linspace(low - 5 * width, high + 5 * width, SPECTRUM_GRID_POINTS)
  return grid, width


def plot_hessian_spectra(path, spectra, title=""):
  """Writes a PNG of the Hessian spectral densities at the solutions found.

  One panel per optimizer, all on one eigenvalue axis: the Gaussian-
  broadened SLQ density (`flatness.density`) averaged over seeds, on a log
  scale clipped at a small floor, with each seed's top eigenvalue (largest
  Ritz value) marked by a dashed line.

  Args:
    path: output file.
    spectra: dict optimizer name -> list over seeds of (ritz_values,
      weights) pairs (the fields of `flatness.Curvature`).
    title: figure title.

  Returns:
    `path`, or None when matplotlib is not installed.
  """
  if not available():
    return None
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  grid, width = spectrum_grid(spectra)
  densities = {name: np.mean([flatness.density(ritz, weights, grid, width)
                               for ritz, weights in runs], axis=0)
               for name, runs in spectra.items()}
  floor = SPECTRUM_FLOOR_FRACTION * max(np.max(d) for d in densities.values())
  figure, axes = pyplot.subplots(len(spectra), 1, squeeze=False, sharex=True,
                                 figsize=(7, 3 * len(spectra)))
  for axis, (name, runs) in zip(axes[:, 0], spectra.items()):
    line, = axis.plot(grid, np.maximum(densities[name], floor),
                      label="density (mean of %d seeds)" % len(runs))
    for seed, (ritz, _) in enumerate(runs):
      axis.axvline(np.max(ritz), color=line.get_color(), linestyle="--",
                   linewidth=1, alpha=0.7,
                   label="top eigenvalue of each seed" if seed == 0 else None)
    axis.set_yscale("log")
    axis.set_ylim(bottom=floor)
    axis.set_ylabel("spectral density")
    axis.set_title(name)
    axis.legend()
  axes[-1, 0].set_xlabel("Hessian eigenvalue")
  if title:
    figure.suptitle(title)
  figure.tight_layout()
  _save(figure, path)
  pyplot.close(figure)
  return path


def campaign_figures(folder, model_name, results, test_runs, num_seeds,
                     spectrum=False):
  """Writes the figures of an evaluation campaign's chosen grid points.

  One curve per optimizer (labelled with its grid point when it has a grid
  of several): loss_curves-<model_name>.png; with held-out problems
  heldout_curves-<model_name>.png; with `spectrum`, for the runs whose
  Hessian is finite, hessian_spectrum-<model_name>[-<problem>].png (the
  problem's name where there are several).

  Args:
    folder: output folder.
    model_name: the file names' suffix.
    results: summary.json's result entries.
    test_runs: per entry of `results`, its `runner.TestRun`s (one per
      seed).
    num_seeds: seeds per grid point (for the titles).
    spectrum: also write the Hessian spectra.

  Returns:
    The paths written.
  """
  losses, heldout, spectra = {}, {}, {}
  for result, runs in zip(results, test_runs):
    if not result["chosen"]:
      continue
    label = result["optimizer"]
    if result["grid_size"] > 1:
      label += " (%s)" % result["grid_point"]
    losses.setdefault(result["problem"], {})[label] = [
        r.objective_values for r in runs]
    if runs[0].metrics is not None:
      heldout.setdefault(result["problem"], {})[label] = [
          r.metrics for r in runs]
    # A chosen point's losses are finite, but its Hessian may not be.
    if runs[0].curvature is not None and all(
        np.all(np.isfinite(r.curvature.ritz_values)) for r in runs):
      spectra.setdefault(result["problem"], {})[label] = [
          (r.curvature.ritz_values, r.curvature.weights) for r in runs]
  title = "model %s, %d seeds" % (model_name, num_seeds)
  written = [plot_loss_curves(
      os.path.join(folder, "loss_curves-%s.png" % model_name), losses,
      title=title)]
  if heldout:
    written.append(plot_heldout_curves(
        os.path.join(folder, "heldout_curves-%s.png" % model_name), heldout,
        title=title + "; before the last step each split is measured on a "
        "fixed subset (--metrics_subset)"))
  if spectrum and spectra:
    for problem, by_optimizer in spectra.items():
      suffix = "-" + problem if len(spectra) > 1 else ""
      written.append(plot_hessian_spectra(
          os.path.join(folder, "hessian_spectrum-%s%s.png" % (model_name,
                                                              suffix)),
          by_optimizer, title="%s: %s" % (problem, title)))
  return written


def plot_meta_training_curves(path, runs, window=50, title=""):
  """Writes a PNG of meta-training runs' curves.

  Four panels: the meta-objective (a moving average over `window`
  meta-updates) and the evaluation cost, each against the meta-update and
  against the wall time.

  Args:
    path: output file.
    runs: dict run label -> dict as `experiments.training_curves.read`
      returns ("MetaObjective" and/or "Evaluation" -> dict with "step",
      "value" and "seconds" arrays).
    window: moving-average window of the meta-objective.
    title: figure title.

  Returns:
    `path`, or None when matplotlib is not installed or there is nothing to
    draw.
  """
  if not available() or not any(runs.values()):
    return None
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  figure, axes = pyplot.subplots(2, 2, figsize=(12, 8))
  panels = (("MetaObjective", "meta-objective (moving average)"),
            ("Evaluation", "evaluation cost"))
  for row, (tag, label) in enumerate(panels):
    for column, (key, xlabel, scale) in enumerate(
        (("step", "meta-update", 1.), ("seconds", "wall time (min)", 60.))):
      axis = axes[row, column]
      for name, curves in runs.items():
        if tag not in curves:
          continue
        values = curves[tag]["value"]
        if tag == "MetaObjective":
          values = smooth(values, window)
        style = "-" if tag == "MetaObjective" else "o-"
        axis.plot(curves[tag][key] / scale, values, style, label=name,
                  markersize=3)
      if tag == "Evaluation":
        axis.set_yscale("log")
      axis.set_xlabel(xlabel)
      axis.set_ylabel(label)
      if axis.has_data():
        axis.legend(fontsize="small")
  if title:
    figure.suptitle(title)
  figure.tight_layout()
  _save(figure, path)
  pyplot.close(figure)
  return path
