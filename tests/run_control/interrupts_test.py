"""Tests of run_control.interrupts: signals as exceptions, deferred writes."""

import os
import signal
import subprocess
import sys
import unittest

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
