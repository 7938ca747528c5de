#!/usr/bin/env bash
# Installs Debian's Fashion-MNIST (package dataset-fashion-mnist) when it is
# missing. The loaders fall back to its folder (problems/data_files.py), and
# the tests that read the real data skip without it, so unlike
# ensure_bazel.sh a failed installation never fails: it prints one line and
# exits 0. Needs root (or sudo) for apt-get.
#
# ENSURE_FASHION_MNIST_DIR overrides the folder checked (default
# /usr/share/datasets/fashion-mnist, where the package installs; the loaders
# always use that default), e.g. to exercise the install path.
set -uo pipefail

folder="${ENSURE_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz
       t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)

have_files() {
  local name
  for name in "${files[@]}"; do
    [ -f "$folder/$name" ] || return 1
  done
}

skip() {
  echo "ensure_fashion_mnist: $1; the real Fashion-MNIST tests will skip" >&2
  exit 0
}

if have_files; then
  exit 0
fi
sudo_cmd=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 ||
    skip "need root or sudo to apt-get install dataset-fashion-mnist"
  sudo_cmd=(sudo -n)
fi
command -v apt-get >/dev/null 2>&1 ||
  skip "no apt-get to install dataset-fashion-mnist"

echo "ensure_fashion_mnist: installing dataset-fashion-mnist with apt-get"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
# A failed update (no network) may still leave usable package lists.
"${sudo_cmd[@]}" apt-get update -q >"$log" 2>&1
if ! "${sudo_cmd[@]}" apt-get install -y -q dataset-fashion-mnist \
    >>"$log" 2>&1; then
  skip "apt-get install dataset-fashion-mnist failed ($(tail -n 1 "$log"))"
fi
have_files || skip "dataset-fashion-mnist installed but $folder lacks the files"
