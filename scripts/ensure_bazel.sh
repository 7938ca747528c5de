#!/usr/bin/env bash
# Installs Debian's Bazel 4.2.3 and its Java rules when they are missing.
# Both are needed by `bazel test //...` offline (see
# third_party/bazel_offline/README.md). Needs root (or sudo) for apt-get.
set -euo pipefail

if command -v bazel >/dev/null 2>&1 && [ -d /usr/share/bazel/rules/java ]; then
  exit 0
fi
echo "ensure_bazel: installing bazel-bootstrap and bazel-rules-java with apt-get"
sudo_cmd=()
if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "ensure_bazel: need root or sudo to apt-get install bazel-bootstrap bazel-rules-java" >&2
    exit 1
  fi
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q bazel-bootstrap bazel-rules-java
