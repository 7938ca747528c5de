"""The meta-training curves of a study's runs, read from their event files.

metarun.py writes, in its log folder's TensorBoard event files, the
meta-objective of every meta-update (`MetaObjective`, at the global step)
and the evaluation cost of every evaluation period (`Evaluation`). This
module reads them back (a resumed run's files together) so that the report
can draw each run's curves against the meta-update and the wall time.
"""

import glob
import os

import numpy as np
import tensorflow.compat.v1 as tf

META_OBJECTIVE = "MetaObjective"
EVALUATION = "Evaluation"
TAGS = (META_OBJECTIVE, EVALUATION)


def read(log_dir, tags=TAGS):
  """The scalars `tags` of every event file in `log_dir`.

  A step written twice (a run resumed from an earlier checkpoint redoes the
  meta-updates after it) keeps its last value.

  Returns:
    dict tag -> dict with "step" (int array, increasing), "value" and
    "seconds" (float arrays; wall seconds since the run's first event);
    tags without an event are absent.
  """
  found = {tag: {} for tag in tags}
  first = None
  for path in sorted(glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))):
    try:
      for event in tf.train.summary_iterator(path):
        first = event.wall_time if first is None else min(first,
                                                          event.wall_time)
        for value in event.summary.value:
          if value.tag in found:
            found[value.tag][event.step] = (event.wall_time,
                                            value.simple_value)
    except tf.errors.DataLossError:
      # The last record of a killed run's file can be cut short.
      continue
  result = {}
  for tag, by_step in found.items():
    if not by_step:
      continue
    steps = sorted(by_step)
    result[tag] = {
        "step": np.array(steps, dtype=np.int64),
        "value": np.array([by_step[s][1] for s in steps], dtype=np.float64),
        "seconds": np.array([by_step[s][0] - first for s in steps],
                            dtype=np.float64)}
  return result
