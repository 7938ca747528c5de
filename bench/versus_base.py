"""Runs a benchmark in this tree and in another checkout, alternately.

For before/after ratios measured in one run: each round runs the same
benchmark command once in `--base` (e.g. a `git worktree` of the commit
before a change) and once in this tree, alternating which goes first, so
that a shared machine's load falls on both alike. Every JSON object a run
prints on a line of its own is read; its numeric leaves are compared by
path, and the table shows per leaf the median ratio this tree / base and its
spread over rounds.

Usage:
  git worktree add /tmp/base <commit>
  python bench/versus_base.py --base=/tmp/base --rounds=3 \
      -- bench/apply_step_bench.py --repetitions=3 --variants=HRNN
  python bench/versus_base.py --base=/tmp/base --keys=s_per_iteration \
      -- bench/meta_training_bench.py --child 20 none
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def numeric_leaves(value, path=""):
  """{"a/b": number} for every int or float leaf of a JSON value."""
  if isinstance(value, bool):
    return {}
  if isinstance(value, (int, float)):
    return {path: float(value)}
  leaves = {}
  if isinstance(value, dict):
    for key, item in value.items():
      leaves.update(numeric_leaves(item, "%s/%s" % (path, key) if path
                                   else str(key)))
  elif isinstance(value, list):
    for index, item in enumerate(value):
      leaves.update(numeric_leaves(item, "%s/%d" % (path, index)))
  return leaves


def run_once(tree, command):
  """The numeric leaves of the JSON lines `command` prints, run in `tree`."""
  result = subprocess.run([sys.executable] + command, cwd=tree,
                          capture_output=True, text=True, check=False)
  if result.returncode:
    raise RuntimeError("%s in %s failed:\n%s" % (" ".join(command), tree,
                                                 result.stderr[-3000:]))
  leaves = {}
  for index, line in enumerate(l for l in result.stdout.splitlines()
                               if l.startswith("{")):
    try:
      parsed = json.loads(line)
    except ValueError:
      continue
    leaves.update(numeric_leaves(parsed, "json%d" % index))
  return leaves


def ratios(base_runs, new_runs, keys=()):
  """{path: [new / base per round]} over the paths both runs have."""
  paths = set(base_runs[0]).intersection(*map(set, base_runs + new_runs))
  if keys:
    paths = {p for p in paths if any(k in p for k in keys)}
  return {p: [new[p] / base[p] for base, new in zip(base_runs, new_runs)
              if base[p]] for p in sorted(paths)}


def alternate(base, new, command, rounds):
  """Runs `command` in `base` and `new` alternately; their leaves per round.

  Returns:
    (base runs, new runs): lists of `run_once` results, one per round.
  """
  runs = {"base": [], "new": []}
  for round_index in range(rounds):
    order = [("base", base), ("new", new)]
    if round_index % 2:
      order.reverse()
    for label, tree in order:
      print("round %d/%d: %s" % (round_index + 1, rounds, label), flush=True)
      runs[label].append(run_once(tree, command))
  return runs["base"], runs["new"]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--base", required=True,
                      help="the other checkout (e.g. a git worktree)")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--keys", default="",
                      help="comma-separated substrings: only report leaves "
                      "whose path contains one")
  parser.add_argument("command", nargs=argparse.REMAINDER,
                      help="-- script and arguments, relative to each tree")
  args = parser.parse_args()
  command = args.command[1:] if args.command[:1] == ["--"] else args.command
  if not command:
    parser.error("give the benchmark command after --")
  if not os.path.isdir(args.base):
    parser.error("--base=%s: not a folder" % args.base)
  base_runs, new_runs = alternate(args.base, _ROOT, command, args.rounds)
  keys = [k for k in args.keys.split(",") if k]
  print("%-60s %10s %10s %8s %s" % ("value", "base", "new", "new/base",
                                    "(min-max)"))
  for path, values in ratios(base_runs, new_runs, keys).items():
    if not values:
      continue
    print("%-60s %10.4g %10.4g %8.3f (%.3f-%.3f)" % (
        path, np.median([r[path] for r in base_runs]),
        np.median([r[path] for r in new_runs]), np.median(values),
        min(values), max(values)))


if __name__ == "__main__":
  main()
