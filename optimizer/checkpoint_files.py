"""The files of meta-training checkpoints: verified, found, written whole.

A log directory holds checkpoints `model.ckpt-<n>` (an `.index` file and
its `.data-*` shard) and TensorFlow's `checkpoint` state file. This module
keeps that layout, readable by plain TensorFlow, and makes it safe:

- The state file names checkpoints relative to its directory, so a moved or
  copied directory reads its own checkpoints; state files of older runs
  with absolute paths are read by file name within the directory.
- `save` writes a checkpoint whole: under a hidden temporary prefix first,
  then a commit marker, then links and renames over the final names. A
  kill before the marker leaves the previous checkpoint; a kill after it
  is completed by `recover` at the next start. Replacing `model.ckpt-0` in
  place is therefore safe.
- `latest_complete` finds the checkpoint to resume from by reading every
  tensor of the candidates, newest first, so that a truncated or
  checksum-failing file is skipped (and said so) rather than restored.
- `model.ckpt-initial` (`INITIAL`) holds the meta-parameters a run started
  from, written before its first meta-update and never replaced; it lacks
  the progress counter (see `meta_training.session`), so it sorts below
  every checkpoint of the run, and a run killed before its first save
  resumes from it.
"""

import os
import re

import tensorflow.compat.v1 as tf

from run_control import atomic
from run_control import interrupts

PREFIX = "model.ckpt"
STATE_FILE = "checkpoint"
_NUMBERED = re.compile(r"^%s-(\d+)$" % re.escape(PREFIX))
_PARTIAL = ".partial"
_COMMIT = ".commit"
INITIAL = PREFIX + "-initial"
PROGRESS_VARIABLE = "meta_training/meta_iterations_done"
GLOBAL_STEP_VARIABLE = "global_step"


class CheckpointError(ValueError):
  """A checkpoint that is missing, unreadable or does not fit."""


def name(number):
  """`model.ckpt-<number>`."""
  return "%s-%d" % (PREFIX, number)


def is_complete(prefix):
  """Whether `prefix` has its index and at least one data shard."""
  directory, base = os.path.split(prefix)
  if not os.path.isfile(prefix + ".index"):
    return False
  try:
    names = os.listdir(directory or ".")
  except OSError:
    return False
  return any(n.startswith(base + ".data-") and "tempstate" not in n
             for n in names)


def listed(directory):
  """The complete checkpoints in `directory` (file names), oldest number
  first: the numbered ones, then any other (visible) prefix."""
  if not os.path.isdir(directory):
    return []
  names = [f[:-len(".index")] for f in os.listdir(directory)
           if f.endswith(".index") and not f.startswith(".")]
  names = [n for n in names if is_complete(os.path.join(directory, n))]
  return sorted(names, key=_sort_key)


def _sort_key(checkpoint_name):
  match = _NUMBERED.match(checkpoint_name)
  if match:
    return (0, int(match.group(1)), checkpoint_name)
  return (1, 0, checkpoint_name)


def verify(prefix):
  """Reads every tensor of checkpoint `prefix`.

  Returns:
    dict variable name -> shape (list).

  Raises:
    CheckpointError: missing files, a truncated file or a checksum
      mismatch; the one-line message names the checkpoint.
  """
  if not is_complete(prefix):
    raise CheckpointError("%s: incomplete checkpoint (its .index or .data "
                          "file is missing)" % prefix)
  try:
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    for variable in shapes:
      reader.get_tensor(variable)
  except Exception as e:  # pylint: disable=broad-except
    # The reader fails in several ways on damaged files (OpError,
    # IndexError, ...); each means the checkpoint does not read back.
    message = getattr(e, "message", None) or str(e) or type(e).__name__
    raise CheckpointError("%s: unreadable checkpoint (%s)" %
                          (prefix, message.strip().splitlines()[0][:200])
                          ) from None
  return {k: list(v) for k, v in shapes.items()}


def progress(prefix):
  """(meta-iterations done, global step) stored in `prefix`: -1 for one
  the checkpoint lacks, None for both when it is unreadable."""
  try:
    reader = tf.train.load_checkpoint(prefix)
    return tuple(int(reader.get_tensor(v)) if reader.has_tensor(v) else -1
                 for v in (PROGRESS_VARIABLE, GLOBAL_STEP_VARIABLE))
  except Exception:  # pylint: disable=broad-except
    return None, None  # Damaged: `verify` says how.


def state_file_choice(directory):
  """The checkpoint name the state file designates, if it is in
  `directory` and complete; else None (missing, unreadable, dangling)."""
  path = os.path.join(directory, STATE_FILE)
  try:
    with open(path, "rb") as f:
      text = f.read().decode("utf-8")
  except (OSError, UnicodeDecodeError):
    return None
  match = re.search(r'^model_checkpoint_path:\s*"([^"]*)"', text, re.M)
  if not match:
    return None
  # Only the file name counts: older state files hold absolute paths,
  # which point elsewhere once the directory is moved or copied.
  chosen = os.path.basename(match.group(1).rstrip("/"))
  if not chosen or not is_complete(os.path.join(directory, chosen)):
    return None
  return chosen


def latest(directory):
  """The newest complete checkpoint's prefix in `directory` without
  reading tensors (the state file's choice, else the newest by stored
  progress), or None."""
  names = _newest_first(directory)
  return os.path.join(directory, names[0]) if names else None


def _newest_first(directory):
  names = listed(directory)
  if not names:
    return []
  chosen = state_file_choice(directory)
  order = {n: i for i, n in enumerate(names)}

  def key(n):
    done, step = progress(os.path.join(directory, n))
    # Damaged ones first, so that `latest_complete` reports them.
    damaged = done is None or step is None
    return (damaged, done or 0, step or 0, n == chosen, order[n])

  return sorted(names, key=key, reverse=True)


def latest_complete(directory, log=None):
  """The checkpoint to resume from: the newest one that reads back whole.

  Newest means the most meta-iterations done (then global step, then the
  state file's choice). Candidates that fail `verify` are skipped; `log`
  is told which and why.

  Returns:
    The prefix, or None when `directory` holds no checkpoint files.

  Raises:
    CheckpointError: checkpoint files are there but none reads back.
  """
  names = _newest_first(directory)
  broken = []
  for n in names:
    prefix = os.path.join(directory, n)
    try:
      verify(prefix)
    except CheckpointError as e:
      broken.append(str(e))
      if log:
        log("warning: %s; trying the previous checkpoint" % e)
      continue
    if broken and log:
      log("using %s instead" % n)
    return prefix
  if broken:
    raise CheckpointError(
        "%s holds checkpoints but none reads back whole (%s); nothing was "
        "changed: move them away to start afresh" %
        (directory, "; ".join(broken[:2])))
  return None


def write_state(directory, latest_name):
  """Writes the `checkpoint` state file (relative names) atomically: the
  latest is `latest_name`, and every complete checkpoint is listed."""
  names = [n for n in listed(directory) if n != latest_name] + [latest_name]
  lines = ['model_checkpoint_path: "%s"' % latest_name]
  lines += ['all_model_checkpoint_paths: "%s"' % n for n in names]
  atomic.write_text(os.path.join(directory, STATE_FILE),
                    "\n".join(lines) + "\n")


def readable(directory, checkpoint_name):
  """The prefix to read checkpoint `checkpoint_name` of `directory` from.

  That is the checkpoint itself, or, while a save of it was interrupted
  after its commit point (completed by the writer's next start), the
  complete new version under its temporary name. None if neither exists.
  """
  final = os.path.join(directory, checkpoint_name)
  if is_complete(final):
    return final
  partial = _partial_prefix(directory, checkpoint_name)
  if os.path.exists(_marker(directory, checkpoint_name)) and is_complete(
      partial):
    return partial
  return None


def _partial_prefix(directory, checkpoint_name):
  return os.path.join(directory, "." + checkpoint_name + _PARTIAL)


def _marker(directory, checkpoint_name):
  return os.path.join(directory, "." + checkpoint_name + _COMMIT)


def _files_of(prefix):
  directory, base = os.path.split(prefix)
  return sorted(os.path.join(directory, n) for n in os.listdir(directory)
                if (n == base + ".index" or n.startswith(base + ".data-"))
                and "tempstate" not in n and not n.endswith(".link"))


def save(sess, saver, directory, number):
  """Saves `model.ckpt-<number>` whole and names it in the state file.

  Signals are held off until the checkpoint and state file are complete.

  Args:
    sess: the session.
    saver: a `tf.train.Saver` of the variables to save.
    directory: the log directory.
    number: the checkpoint number.

  Returns:
    The prefix written.
  """
  return save_as(sess, saver, directory, name(number))


def save_as(sess, saver, directory, checkpoint_name, designate=True):
  """Saves checkpoint `checkpoint_name` whole (see `save`).

  Args:
    sess, saver, directory: as `save`.
    checkpoint_name: the file name of the checkpoint, e.g. `INITIAL`.
    designate: make it the state file's latest checkpoint (else the state
      file is left as it is).

  Returns:
    The prefix written.
  """
  partial = _partial_prefix(directory, checkpoint_name)
  with interrupts.deferred():
    for path in _files_of(partial):
      os.remove(path)
    saver.save(sess, partial, write_meta_graph=False, write_state=False)
    for path in _files_of(partial):
      atomic.fsync_file(path)
    atomic.write_text(_marker(directory, checkpoint_name), partial + "\n")
    _commit(directory, checkpoint_name)
    if designate:
      write_state(directory, checkpoint_name)
  return os.path.join(directory, checkpoint_name)


def copy(source, directory, checkpoint_name):
  """Copies checkpoint prefix `source` to `checkpoint_name` in `directory`.

  The data shards are written first (each atomically), the index last, and
  an existing index of that name is removed before, so a reader never pairs
  an old index with new data. The state file is left as it is.

  Returns:
    The prefix written.

  Raises:
    CheckpointError: `source` is not a complete checkpoint.
  """
  if not is_complete(source):
    raise CheckpointError("%s: incomplete checkpoint (its .index or .data "
                          "file is missing)" % source)
  target = os.path.join(directory, checkpoint_name)
  files = _files_of(source)
  index = source + ".index"
  with interrupts.deferred():
    if os.path.exists(target + ".index"):
      os.remove(target + ".index")
    for path in [f for f in files if f != index] + [index]:
      with open(path, "rb") as f:
        atomic.write_bytes(target + path[len(source):], f.read())
  return target


def _commit(directory, checkpoint_name):
  """Moves a marked partial checkpoint over its final name (idempotent).

  The data shards are linked over the final names first (the partial
  checkpoint stays whole), then the index is renamed, which makes the new
  checkpoint visible; so a reader finds one whole version at every instant
  (`readable`) and a rerun after a kill redoes what is left.
  """
  partial = _partial_prefix(directory, checkpoint_name)
  final = os.path.join(directory, checkpoint_name)
  index = partial + ".index"
  pending = _files_of(partial)
  if index in pending and os.path.exists(final + ".index"):
    # The old index must not meet the new data.
    os.remove(final + ".index")
  for path in pending:
    if path != index:
      link = path + ".link"
      if os.path.exists(link):
        os.remove(link)
      os.link(path, link)
      _replace(link, final + path[len(partial):])
  if index in pending:
    _replace(index, final + ".index")
  for path in pending:
    if path != index:
      os.remove(path)
  atomic.sync_directory(directory)
  os.remove(_marker(directory, checkpoint_name))
  atomic.sync_directory(directory)


def _replace(source, target):
  os.replace(source, target)


def recover(directory):
  """Completes interrupted commits and deletes leftover temporary files.

  Call while holding the directory's lock, before reading checkpoints.

  Returns:
    (names of checkpoints completed, names of files removed).
  """
  completed, removed = [], []
  if not os.path.isdir(directory):
    return completed, removed
  for entry in sorted(os.listdir(directory)):
    if entry.startswith(".") and entry.endswith(_COMMIT):
      checkpoint_name = entry[1:-len(_COMMIT)]
      _commit(directory, checkpoint_name)
      completed.append(checkpoint_name)
  for entry in sorted(os.listdir(directory)):
    if entry.startswith(".") and _PARTIAL in entry:
      os.remove(os.path.join(directory, entry))
      removed.append(entry)
  removed += atomic.remove_leftovers(directory)
  if completed:
    newest = latest(directory)
    if newest:
      write_state(directory, os.path.basename(newest))
  return completed, removed
