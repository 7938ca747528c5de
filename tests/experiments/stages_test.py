"""Tests of experiments/stages.py: a stage's log across killed attempts.

The training stages run a stand-in for metarun.py (a small script in a
temporary folder that `stages.ROOT` points at), so that the test controls
when it prints and when it ends: no TensorFlow run, no sleeping.
"""

from tests import test_util

import io
import os
import signal
import subprocess
import sys
import textwrap
from unittest import mock

import tensorflow.compat.v1 as tf

from experiments import plan
from experiments import stages

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# Prints a line per attempt; the first attempt then waits for its standard
# input to close (it inherits the study's), the second writes the output a
# finished meta-training leaves and exits.
_STAND_IN = textwrap.dedent("""\
    import os
    import sys
    attempt, folder = sys.argv[1], sys.argv[2]
    print("attempt %s: meta-iteration 1/2 (PID %d)" % (attempt, os.getpid()),
          flush=True)
    if attempt == "first":
      sys.stdin.read()
    else:
      logdir = os.path.join(folder, "HierarchicalRNN_GRUCell_20_2")
      os.makedirs(logdir)
      for suffix in (".index", ".data-00000-of-00001"):
        open(os.path.join(logdir, "model.ckpt-0" + suffix), "w").close()
      print("attempt %s: done" % attempt)
    """)

# The study's side of the first attempt, in its own process (it is killed).
_STUDY = textwrap.dedent("""\
    import sys
    from experiments import plan
    from experiments import stages
    stages.ROOT = sys.argv[1]
    stage = plan.Stage("train", "train fake", "metarun.py",
                       ["first", sys.argv[3]], sys.argv[3], "fake", None, 1)
    stages.run(stage, sys.argv[2], sys.stdout)
    """)


class StageLogTest(test_util.TestCase):

  def setUp(self):
    super().setUp()
    root = self.make_tempdir()
    self.fake_root = os.path.join(root, "fake_root")
    os.makedirs(self.fake_root)
    with open(os.path.join(self.fake_root, "metarun.py"), "w") as f:
      f.write(_STAND_IN)
    self.study_dir = os.path.join(root, "study")
    self.folder = os.path.join(self.study_dir, "fake")

  def _kill_the_study_during_its_first_attempt(self):
    """Runs the first attempt in a study process and SIGKILLs the study
    once its stand-in has printed; returns the stand-in's PID."""
    study = subprocess.Popen(
        [sys.executable, "-c", _STUDY, self.fake_root, self.study_dir,
         self.folder], cwd=_ROOT, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=_ROOT))
    try:
      for line in study.stdout:
        if "attempt first: meta-iteration 1/2" in line:
          break
      else:
        self.fail("the stage printed nothing: %s" % study.stderr.read())
      study.send_signal(signal.SIGKILL)
      study.wait(timeout=60)
    finally:
      if study.poll() is None:
        study.kill()
        study.wait()
      # The stand-in (in its own session) sees its standard input close.
      study.stdin.close()
      study.stdout.close()
      study.stderr.close()
    return int(line.rsplit("PID ", 1)[1].rstrip(")\n"))

  def test_a_killed_attempt_s_log_is_kept_and_the_rerun_appends(self):
    stand_in = self._kill_the_study_during_its_first_attempt()
    try:
      os.kill(stand_in, signal.SIGKILL)
    except ProcessLookupError:
      pass  # Already gone after its standard input closed.
    stage = plan.Stage("train", "train fake", "metarun.py",
                       ["second", self.folder], self.folder, "fake", None, 1)
    log_path = os.path.join(self.study_dir, stages.LOG_DIR,
                            "train_fake.log")
    with open(log_path) as f:
      killed = f.read()
    self.assertIn("attempt first: meta-iteration 1/2", killed)
    with mock.patch.object(stages, "ROOT", self.fake_root):
      stages.run(stage, self.study_dir, io.StringIO())
    with open(log_path) as f:
      text = f.read()
    self.assertTrue(text.startswith(killed), text)
    lines = text.splitlines()
    self.assertLen([l for l in lines if l.startswith("# attempt started")],
                   2)
    self.assertEqual([l.split(" (PID")[0] for l in lines
                      if l.startswith("attempt ")],
                     ["attempt first: meta-iteration 1/2",
                      "attempt second: meta-iteration 1/2",
                      "attempt second: done"])
    self.assertEqual(stages.read_marker(stage)["attempts"], 1)


if __name__ == "__main__":
  tf.test.main()
