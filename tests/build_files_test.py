"""The Bazel BUILD files cover every Python module the code imports.

pytest runs from the source tree, so it finds a module that no BUILD target
lists; `bazel test` runs each test with only its targets' files and fails with
an ImportError there. This check reads the BUILD files and the sources'
imports (with `ast`) and reports, without running Bazel:
  * a .py file in a package that no target of its BUILD file lists in `srcs`;
  * a first-party import in a target's sources whose file is not in that
    target or in any target it depends on, directly or not.
"""

import ast
import os
import tempfile
import unittest

_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
# Files the Bazel build does not need: pytest's set-up.
_NOT_BUILT = {"conftest.py"}
_SKIPPED_DIRS = {".git", ".venv", "third_party", "__pycache__"}


def _packages(root):
  """Yields each folder under `root` that holds a BUILD file, relative."""
  for folder, dirs, files in os.walk(root):
    dirs[:] = sorted(d for d in dirs
                     if d not in _SKIPPED_DIRS and not d.startswith("bazel-"))
    if "BUILD" in files:
      yield os.path.relpath(folder, root).replace(os.sep, "/").lstrip(".")


def _targets(root, package):
  """The Python targets of one BUILD file: {label: (srcs, deps)}.

  BUILD files are Starlark, which for the rules used here reads as Python
  calls with keyword arguments; each rule is evaluated by a stub that records
  its name, sources and dependencies.
  """
  found = {}

  def rule(name, srcs=(), deps=(), **_):
    label = "//%s:%s" % (package, name)
    files = ["/".join(filter(None, [package, s])) for s in srcs]
    labels = [_absolute(d, package) for d in deps]
    found[label] = (files, labels)

  def ignore(*_, **__):
    pass

  names = {"py_library": rule, "py_test": rule, "py_binary": rule,
           "package": ignore, "filegroup": ignore, "alias": ignore}
  path = os.path.join(root, package, "BUILD")
  with open(path) as f:
    exec(compile(f.read(), path, "exec"), names)  # pylint: disable=exec-used
  return found


def _absolute(label, package):
  if label.startswith(":"):
    return "//%s%s" % (package, label)
  if ":" not in label:  # //a/b means //a/b:b
    return "%s:%s" % (label, label.rsplit("/", 1)[-1])
  return label


def _imported_files(root, source):
  """The repository files a source file imports (at any depth in it)."""
  with open(os.path.join(root, source)) as f:
    tree = ast.parse(f.read(), source)
  modules = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      modules.extend(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      # `from a import b` may name a module a/b.py or an attribute of a.
      modules.append(node.module)
      modules.extend(node.module + "." + alias.name for alias in node.names)
  files = set()
  for module in modules:
    base = os.path.join(*module.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
      if os.path.isfile(os.path.join(root, candidate)):
        files.add(candidate.replace(os.sep, "/"))
  return files


def _closure(label, targets):
  """`label` and every target it depends on, directly or not."""
  seen, todo = set(), [label]
  while todo:
    current = todo.pop()
    if current in seen or current not in targets:
      continue
    seen.add(current)
    todo.extend(targets[current][1])
  return seen


def problems(root):
  """Every BUILD coverage problem under `root`, as readable lines."""
  targets = {}
  found = []
  for package in _packages(root):
    in_package = _targets(root, package)
    targets.update(in_package)
    listed = {s for srcs, _ in in_package.values() for s in srcs}
    folder = os.path.join(root, package)
    for name in sorted(os.listdir(folder)):
      path = "/".join(filter(None, [package, name]))
      if name.endswith(".py") and name not in _NOT_BUILT and path not in listed:
        found.append("%s: in no target's srcs of %s/BUILD" %
                     (path, package or "."))
  for label, (srcs, deps) in sorted(targets.items()):
    for dep in deps:
      if dep not in targets:
        found.append("%s: depends on %s, which no BUILD file defines" %
                     (label, dep))
    available = {s for t in _closure(label, targets) for s in targets[t][0]}
    for source in srcs:
      for needed in sorted(_imported_files(root, source) - available):
        found.append("%s: %s imports %s, which is in none of its deps" %
                     (label, source, needed))
  return found


class BuildFilesTest(unittest.TestCase):

  def setUp(self):
    super().setUp()
    if not os.path.exists(os.path.join(_ROOT, "WORKSPACE")):
      # A copied (not linked) runfiles tree holds no WORKSPACE to read.
      self.skipTest("needs the source tree's BUILD files")

  def test_every_import_is_covered(self):
    self.assertEqual([], problems(_ROOT))

  def test_finds_a_module_missing_from_build(self):
    """The check itself catches the mistake it exists for (a made-up tree)."""
    with tempfile.TemporaryDirectory() as root:
      os.makedirs(os.path.join(root, "pkg"))
      files = {
          "WORKSPACE": "",
          "pkg/__init__.py": "",
          "pkg/used.py": "X = 1\n",
          "pkg/user.py": "def f():\n  from pkg import used\n  return used.X\n",
          "pkg/BUILD": ('py_library(name = "user", srcs = ["__init__.py", '
                        '"user.py"])\n'),
      }
      for name, text in files.items():
        with open(os.path.join(root, name), "w") as f:
          f.write(text)
      self.assertEqual(
          ["pkg/used.py: in no target's srcs of pkg/BUILD",
           "//pkg:user: pkg/user.py imports pkg/used.py, which is in none of "
           "its deps"], problems(root))
      with open(os.path.join(root, "pkg/BUILD"), "a") as f:
        f.write('py_library(name = "used", srcs = ["used.py"])\n')
      self.assertEqual(
          ["//pkg:user: pkg/user.py imports pkg/used.py, which is in none of "
           "its deps"], problems(root))
      with open(os.path.join(root, "pkg/BUILD"), "w") as f:
        f.write('py_library(name = "user", srcs = ["__init__.py", "user.py"],'
                ' deps = [":used"])\n'
                'py_library(name = "used", srcs = ["used.py"])\n')
      self.assertEqual([], problems(root))


if __name__ == "__main__":
  unittest.main()
