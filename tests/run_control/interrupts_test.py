"""Tests of run_control.interrupts: signals as exceptions, deferred writes."""

import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from unittest import mock

from run_control import interrupts


class InterruptsTest(unittest.TestCase):

  def test_signals_raise_with_their_exit_status(self):
    # What the process had (SIG_IGN for SIGINT when started in the background
    # by a shell without job control).
    before = {s: signal.getsignal(s) for s in interrupts.SIGNALS}
    for signum, status in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
      with self.assertRaises(interrupts.Interrupted) as context:
        with interrupts.handling():
          os.kill(os.getpid(), signum)
          for _ in range(1000000):  # Python runs the handler between bytecodes.
            pass
      self.assertEqual(context.exception.exit_status, status)
    # The previous handlers are back.
    for signum, handler in before.items():
      self.assertIs(signal.getsignal(signum), handler)

  def test_a_deferred_block_finishes_before_the_signal_is_raised(self):
    steps = []
    with self.assertRaises(interrupts.Interrupted) as context:
      with interrupts.handling():
        with interrupts.deferred():
          os.kill(os.getpid(), signal.SIGTERM)
          for _ in range(100000):
            pass
          steps.append("write finished")
        steps.append("after the block")
    self.assertEqual(steps, ["write finished"])
    self.assertEqual(context.exception.signum, signal.SIGTERM)

  def test_nested_blocks_raise_at_the_outermost_end(self):
    steps = []
    with self.assertRaises(interrupts.Interrupted):
      with interrupts.handling():
        with interrupts.deferred():
          with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(100000):
              pass
          steps.append("outer still running")
    self.assertEqual(steps, ["outer still running"])


  def test_no_raise_inside_tensorflow_then_raised_after_it(self):
    """A signal that comes while library code runs (TensorFlow's, whose C++
    calls back into Python) is raised only once the program's code runs."""
    with tempfile.TemporaryDirectory() as folder:
      path = os.path.join(folder, "busy.py")
      with open(path, "w") as f:
        f.write("import os\n\ndef run(signum, steps):\n"
                "  os.kill(os.getpid(), signum)\n"
                "  for _ in range(1000000):\n    pass\n"
                "  steps.append('library finished')\n")
      spec = importlib.util.spec_from_file_location("busy", path)
      busy = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(busy)
      steps = []
      with mock.patch.object(interrupts, "_library_dirs",
                             return_value=[folder + os.sep]):
        with self.assertRaises(interrupts.Interrupted) as context:
          with interrupts.handling():
            busy.run(signal.SIGTERM, steps)
            steps.append("back in the program")
            deadline = time.monotonic() + 10  # the retry comes in 0.05 s
            while time.monotonic() < deadline:
              pass
            steps.append("never raised")
    self.assertEqual(steps, ["library finished", "back in the program"])
    self.assertEqual(context.exception.signum, signal.SIGTERM)

  def test_the_raise_of_a_retried_signal_cancels_its_retry(self):
    """A signal that lands in TensorFlow's code arms the SIGALRM retry; the
    program's next check() raises it, and the retry must be gone then."""
    # A retry that cannot fire by itself during the test (the timer is read
    # with getitimer instead).
    with mock.patch.object(interrupts, "RETRY_SECONDS", 600.):
      with self.assertRaises(interrupts.Interrupted):
        with interrupts.handling():
          with mock.patch.object(interrupts, "_in_tensorflow",
                                 return_value=True):
            signal.raise_signal(signal.SIGTERM)  # handled before it returns
          self.assertGreater(signal.getitimer(signal.ITIMER_REAL)[0], 0.)
          try:
            interrupts.check()
          finally:
            armed = signal.getitimer(signal.ITIMER_REAL)
    self.assertEqual(armed, (0., 0.))

  def test_a_late_retry_raises_nothing_in_the_handler_of_the_interrupt(self):
    """What metarun.py's meta-training does: check() raises, and its handler
    works out where the run stands while the retry's SIGALRM arrives (here
    sent by hand: the timer's expiry, delivered late). It must not raise a
    second Interrupted there (which printed "interrupted before
    meta-training started" at meta-iteration 157)."""
    steps, first = [], []
    with mock.patch.object(interrupts, "RETRY_SECONDS", 600.):
      with self.assertRaises(interrupts.Interrupted) as context:
        with interrupts.handling():
          with mock.patch.object(interrupts, "_in_tensorflow",
                                 return_value=True):
            signal.raise_signal(signal.SIGINT)
          try:
            interrupts.check()
          except interrupts.Interrupted as e:
            first.append(e)
            signal.raise_signal(signal.SIGALRM)  # handled before it returns
            steps.append("handler finished")
            raise
    self.assertEqual(steps, ["handler finished"])
    self.assertIs(context.exception, first[0])

  def test_a_signal_while_starting_ends_the_program_in_one_line(self):
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    process = subprocess.Popen(
        [sys.executable, "-c", "from run_control import interrupts; "
         "interrupts.exit_while_starting('prog.py'); print('ready', "
         "flush=True); import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=root, env=dict(os.environ, PYTHONPATH=root))
    self.assertEqual(process.stdout.readline(), "ready\n")
    process.send_signal(signal.SIGTERM)
    _, errors = process.communicate(timeout=60)
    process.stdin.close()
    self.assertEqual(process.returncode, 143)
    self.assertEqual(errors, "prog.py: interrupted (SIGTERM) while starting; "
                     "nothing was written\n")


if __name__ == "__main__":
  unittest.main()
