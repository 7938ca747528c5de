"""SIGINT and SIGTERM as an exception raised where it is safe.

Inside `handling()` the two signals raise `Interrupted` in the main thread,
except within a `deferred()` block (a file being written and renamed): there
the signal is remembered and raised when the block ends, so that no write
is left half-done. Programs turn `Interrupted` into one line and the exit
status 128 + signal number (130 for Ctrl-C, 143 for SIGTERM).

Nor is it raised while TensorFlow's own Python code is running: TensorFlow's
C++ calls back into Python (e.g. `session.run` flattening its feed), and an
exception raised in such a callback crashed the process with a segmentation
fault about one time in ten. There the signal is remembered and retried
every `RETRY_SECONDS` (by SIGALRM) until it lands in the program's own code,
or raised by the next `check()`. Whichever raises it first cancels the
retry: one signal raises one `Interrupted`, never a second one inside the
handler that is dealing with the first.
"""

import contextlib
import os
import signal
import sys

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}

# depth: nesting of `deferred()` blocks; pending: the signal not yet handled
# by the program (kept after a raise, for `check()`); retrying: whether a
# SIGALRM retry of it is owed.
_state = {"depth": 0, "pending": None, "retrying": False}
RETRY_SECONDS = 0.05


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


def _library_dirs():
  """Folders of the packages a signal must not be raised in: TensorFlow's,
  once it is imported."""
  module = sys.modules.get("tensorflow")
  path = getattr(module, "__file__", None)
  return [os.path.dirname(path) + os.sep] if path else []


def _in_tensorflow(frame):
  """Whether `frame` or a frame that called it is TensorFlow's code."""
  folders = tuple(_library_dirs())
  while folders and frame is not None:
    if frame.f_code.co_filename.startswith(folders):
      return True
    frame = frame.f_back
  return False


def _raise(signum):
  """Raises `Interrupted(signum)` with the SIGALRM retry cancelled.

  A retry left armed would raise a second `Interrupted` wherever the
  program is when it fires: typically inside the handler of the first one
  (metarun.py then reported an interrupt at meta-iteration 157 as one
  "before meta-training started"). The flag is cleared before the timer,
  so a SIGALRM already on its way finds nothing to retry.
  """
  _state["retrying"] = False
  signal.setitimer(signal.ITIMER_REAL, 0)
  raise Interrupted(signum)


def _raise_if_safe(frame):
  if _state["pending"] is None or _state["depth"] > 0:
    return
  if _in_tensorflow(frame):
    _state["retrying"] = True
    signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)
    return
  _raise(_state["pending"])


def _handler(signum, frame):
  # Remembered even when raised: a raise that lands where Python ignores
  # exceptions (a __del__, a callback) is repeated by the next `check()`.
  _state["pending"] = signum
  _raise_if_safe(frame)


def _retry(unused_signum, frame):
  if _state["retrying"]:
    _raise_if_safe(frame)


def check():
  """Raises `Interrupted` if a signal came and was not raised yet (or its
  raise was swallowed). Call at safe points of long loops."""
  if _state["pending"] is not None and _state["depth"] == 0:
    _raise(_state["pending"])


@contextlib.contextmanager
def handling():
  """Installs the handlers for the block (restores the old ones after)."""
  previous = {s: signal.signal(s, _handler) for s in SIGNALS}
  previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, _retry)
  _state["pending"], _state["retrying"] = None, False
  try:
    yield
  finally:
    signal.setitimer(signal.ITIMER_REAL, 0)
    for s, handler in previous.items():
      signal.signal(s, handler)
    _state["pending"], _state["retrying"] = None, False


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
