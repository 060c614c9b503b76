#!/bin/sh
# Puts Debian's statically linked busybox into the build context: the base of the example image.
set -e
here=$(cd "$(dirname "$0")" && pwd)
bb=$(command -v busybox || true)
if [ -z "$bb" ]; then
  echo "busybox not found: apt-get install -y busybox-static" >&2
  exit 1
fi
cp "$bb" "$here/busybox"
