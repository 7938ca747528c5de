"""Tests of run_control.lock: one writer per directory."""

import os
import signal
import subprocess
import sys
import unittest
import tempfile

from run_control import lock

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
# Takes the lock, says so, then waits for stdin to close.
_HOLDER = ("import sys; from run_control import lock; "
           "l = lock.DirectoryLock(sys.argv[1], 'holder').acquire(); "
           "print('held', flush=True); sys.stdin.read()")


class DirectoryLockTest(unittest.TestCase):

  def setUp(self):
    self.dir = tempfile.mkdtemp()

  def _holder(self):
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, self.dir], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True, cwd=_ROOT,
        env=dict(os.environ, PYTHONPATH=_ROOT))
    self.assertEqual(process.stdout.readline().strip(), "held")
    return process

  def test_a_second_process_is_refused_with_the_holders_pid(self):
    holder = self._holder()
    try:
      with self.assertRaises(lock.LockError) as context:
        lock.DirectoryLock(self.dir, "second").acquire()
      message = str(context.exception)
      self.assertIn("holder (PID %d)" % holder.pid, message)
      self.assertIn(self.dir, message)
      self.assertNotIn("\n", message)
    finally:
      holder.stdin.close()
      holder.wait()
    with lock.DirectoryLock(self.dir, "third"):
      with open(os.path.join(self.dir, lock.LOCK_FILE)) as f:
        self.assertEqual(f.read(), "third (PID %d)\n" % os.getpid())

  def test_the_lock_of_a_killed_process_is_taken_over(self):
    holder = self._holder()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    holder.stdin.close()
    holder.stdout.close()
    with open(os.path.join(self.dir, lock.LOCK_FILE)) as f:
      self.assertIn("PID %d" % holder.pid, f.read())
    with lock.DirectoryLock(self.dir, "next"):
      pass

  def test_it_is_reentrant_within_a_process(self):
    outer = lock.DirectoryLock(self.dir, "outer").acquire()
    with lock.DirectoryLock(os.path.join(self.dir, "."), "inner"):
      pass
    # Still held after the inner release: another process is refused.
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from run_control import lock; "
         "lock.DirectoryLock(sys.argv[1], 'x').acquire()", self.dir],
        capture_output=True, text=True, cwd=_ROOT,
        env=dict(os.environ, PYTHONPATH=_ROOT))
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("LockError", result.stderr)
    outer.release()
    with lock.DirectoryLock(self.dir, "again"):
      pass


if __name__ == "__main__":
  unittest.main()
