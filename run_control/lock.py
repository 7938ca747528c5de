"""One writer per directory: an exclusive lock on a file inside it.

The lock is `flock` on `<directory>/.lock`; the kernel releases it when its
process ends however it ends, so the lock of a killed process is simply
taken by the next one. The file holds the holder's PID and program so that
a refused second writer can say who holds it. Within one process the
lock is re-entrant (metarun.py holds it, and so does the meta-training it
calls).
"""

import errno
import fcntl
import os

LOCK_FILE = ".lock"
# realpath of a directory -> [file descriptor, holders] in this process.
_HELD = {}


class LockError(RuntimeError):
  """The directory is locked by another live process."""


class DirectoryLock(object):
  """Context manager holding `directory`'s lock (created if needed).

  Args:
    directory: the directory to lock (created if missing).
    program: name written into the lock file (e.g. "metarun.py").
  """

  def __init__(self, directory, program):
    self.directory = directory
    self.program = program
    self.path = os.path.join(directory, LOCK_FILE)
    self._key = None

  def acquire(self):
    """Takes the lock.

    Raises:
      LockError: another process holds it; the message names its PID.
    """
    os.makedirs(self.directory, exist_ok=True)
    key = os.path.realpath(self.directory)
    if key in _HELD:
      _HELD[key][1] += 1
      self._key = key
      return self
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      holder = _read(fd)
      os.close(fd)
      if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
        raise
      raise LockError(
          "%s is in use by %s; wait for it to finish or use another "
          "directory" % (self.directory, holder or "another process")
      ) from None
    os.ftruncate(fd, 0)
    os.write(fd, ("%s (PID %d)\n" % (self.program, os.getpid())).encode())
    _HELD[key] = [fd, 1]
    self._key = key
    return self

  def release(self):
    """Releases the lock (the last holder in this process unlocks)."""
    if self._key is None:
      return
    entry = _HELD[self._key]
    entry[1] -= 1
    if entry[1] == 0:
      del _HELD[self._key]
      fcntl.flock(entry[0], fcntl.LOCK_UN)
      os.close(entry[0])
    self._key = None

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *unused_exc):
    self.release()


def _read(fd):
  try:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 200).decode("utf-8", "replace").strip()
  except OSError:
    return ""
