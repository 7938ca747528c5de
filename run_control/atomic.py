"""Files written whole or not at all.

Every writer here writes a temporary file beside the target (a hidden name
with the writer's PID), flushes it to disk and renames it over the target,
so that a reader or a crash sees either the old file or the new one.
`remove_leftovers` deletes the temporaries that a killed writer left.
"""

import errno
import fnmatch
import json
import os

TEMPORARY_MARK = ".tmp-"
# The system's words for a write that found no space; TensorFlow's errors
# carry them in their message.
_NO_SPACE_TEXTS = ("No space left on device", "Disk quota exceeded")


def temporary_name(path):
  """The hidden temporary file beside `path` that this process writes."""
  directory, name = os.path.split(path)
  return os.path.join(directory, ".%s%s%d" % (name, TEMPORARY_MARK,
                                              os.getpid()))


def write_bytes(path, data):
  """Replaces `path` by `data` atomically."""
  temporary = temporary_name(path)
  try:
    with open(temporary, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(temporary, path)
  except BaseException:
    if os.path.exists(temporary):
      os.remove(temporary)
    raise
  sync_directory(os.path.dirname(path) or ".")


def write_text(path, text):
  """Replaces `path` by `text` (UTF-8) atomically."""
  write_bytes(path, text.encode("utf-8"))


def write_json(path, value, indent=1):
  """Replaces `path` by the JSON of `value` atomically."""
  write_text(path, json.dumps(value, indent=indent, sort_keys=True) + "\n")


def is_disk_full(error):
  """Whether `error`, or one it was raised while handling, is a full disk.

  That is an OSError with ENOSPC or EDQUOT (this module's writes, Python's
  own), or an error whose message is the system's for them: TensorFlow's
  checkpoint writer raises ResourceExhaustedError, its summary writer
  RuntimeError. The programs turn it into one line naming their folder.
  """
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC,
                                                      errno.EDQUOT):
      return True
    if any(text in str(error) for text in _NO_SPACE_TEXTS):
      return True
    error = error.__cause__ or error.__context__
  return False


def fsync_file(path):
  """Flushes the file `path` (written by someone else) to disk."""
  fd = os.open(path, os.O_RDONLY)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)


def sync_directory(directory):
  """Flushes `directory`'s entries (renames, removals) to disk."""
  try:
    fd = os.open(directory, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(fd)
  except OSError:
    pass
  finally:
    os.close(fd)


# Temporary files of killed writers: ours, TensorFlow's checkpoint writer
# (`<prefix>.index.tempstate<n>`, `<prefix>.data-...tempstate<n>`), its
# state-file writer (`checkpoint.tmp<hex>`) and this project's older writers
# (`<name>.tmp-<pid>`).
LEFTOVER_PATTERNS = (".*" + TEMPORARY_MARK + "*", "*.tempstate*",
                     "checkpoint.tmp*", "*" + TEMPORARY_MARK + "[0-9]*")


def remove_leftovers(directory, patterns=LEFTOVER_PATTERNS):
  """Deletes the leftover temporary files in `directory`.

  Call only while holding the directory's lock: a live writer's temporary
  files match too.

  Returns:
    The names removed.
  """
  removed = []
  if not os.path.isdir(directory):
    return removed
  for name in sorted(os.listdir(directory)):
    path = os.path.join(directory, name)
    if os.path.isfile(path) and any(fnmatch.fnmatch(name, p)
                                    for p in patterns):
      os.remove(path)
      removed.append(name)
  return removed
