"""The optimizer-setting flags of the entry points (metarun.py, metatest.py).

Both programs define one absl flag per row of `optimizer.settings.FLAG_TABLE`
(the original's names, types and defaults); library code never sees them.
"""

from absl import flags

from optimizer import settings

_DEFINERS = {str: flags.DEFINE_string, int: flags.DEFINE_integer,
             float: flags.DEFINE_float, bool: flags.DEFINE_boolean}


def define(flag_values=None):
  """Defines the flags in `flag_values` (default: absl's global FLAGS)."""
  where = {} if flag_values is None else {"flag_values": flag_values}
  for name, kind, default, help_text in settings.FLAG_TABLE:
    _DEFINERS[kind](name, default, help_text, **where)
