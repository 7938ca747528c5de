"""The one place that switches TensorFlow to TF1 graph-mode behaviour.

Entry points (metarun.py, metatest.py) and tests call `enable()` before
building anything. Library modules never call it: they only use
`tensorflow.compat.v1` APIs inside an explicit `tf.Graph`, so importing them
changes nothing in a user's program.
"""

import tensorflow.compat.v1 as tf

_enabled = False


def enable():
  """Disables TF2 behaviour (eager execution, v2 control flow, ...) once."""
  global _enabled
  if not _enabled:
    tf.disable_v2_behavior()
    _enabled = True
