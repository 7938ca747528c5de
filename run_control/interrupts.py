"""SIGINT and SIGTERM as an exception raised where it is safe.

Inside `handling()` the two signals raise `Interrupted` in the main thread,
except within a `deferred()` block (a file being written and renamed): there
the signal is remembered and raised when the block ends, so that no write
is left half-done. Programs turn `Interrupted` into one line and the exit
status 128 + signal number (130 for Ctrl-C, 143 for SIGTERM).
"""

import contextlib
import os
import signal
import sys

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}

_state = {"depth": 0, "pending": None}


class Interrupted(BaseException):
  """The process got SIGINT or SIGTERM.

  A BaseException, like KeyboardInterrupt, so that library code catching
  Exception (TensorFlow's feed handling does) lets it through.
  """

  def __init__(self, signum):
    super().__init__(_NAMES.get(signum, "signal %d" % signum))
    self.signum = signum

  @property
  def exit_status(self):
    return 128 + self.signum


def _handler(signum, unused_frame):
  # Remembered even when raised: a raise that lands where Python ignores
  # exceptions (a __del__, a callback) is repeated by the next `check()`.
  _state["pending"] = signum
  if _state["depth"] == 0:
    raise Interrupted(signum)


def check():
  """Raises `Interrupted` if a signal came and was not raised yet (or its
  raise was swallowed). Call at safe points of long loops."""
  if _state["pending"] is not None and _state["depth"] == 0:
    raise Interrupted(_state["pending"])


@contextlib.contextmanager
def handling():
  """Installs the handlers for the block (restores the old ones after)."""
  previous = {s: signal.signal(s, _handler) for s in SIGNALS}
  _state["pending"] = None
  try:
    yield
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
    _state["pending"] = None


@contextlib.contextmanager
def deferred():
  """A block that a signal does not interrupt; it is raised at its end."""
  _state["depth"] += 1
  try:
    yield
  finally:
    _state["depth"] -= 1
    check()


def exit_while_starting(program):
  """Until `handling()` takes over: SIGINT/SIGTERM end the process at once
  with one line (for a program's imports, before anything is written)."""

  def leave(signum, unused_frame):
    sys.stderr.write("%s: interrupted (%s) while starting; nothing was "
                     "written\n" % (program, _NAMES.get(signum, signum)))
    sys.stderr.flush()
    os._exit(128 + signum)  # pylint: disable=protected-access

  for s in SIGNALS:
    signal.signal(s, leave)
