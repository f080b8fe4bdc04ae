#!/usr/bin/env bash
# Checks the glibc that docs/multinode.md says the release binary needs
# against the binary: the highest GLIBC_x.y version among the symbols it
# imports (objdump -T), which is the oldest glibc its dynamic loader accepts.
#
#   .ci/glibc-check.sh bin/llem-linux-amd64 docs/multinode.md
set -euo pipefail
bin=${1:?usage: glibc-check.sh BINARY DOC}
doc=${2:?usage: glibc-check.sh BINARY DOC}
command -v objdump >/dev/null || { echo "glibc-check: objdump not found (apt-get install binutils)" >&2; exit 2; }

needs=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//' | sort -uV | tail -n 1)
[ -n "$needs" ] || { echo "glibc-check: $bin imports no versioned glibc symbol: is it a dynamically linked binary?" >&2; exit 1; }
claim=$(grep -o 'release binary needs glibc [0-9][0-9.]*' "$doc" | head -n 1 | awk '{print $NF}')
[ -n "$claim" ] || { echo "glibc-check: $doc has no sentence 'release binary needs glibc X.Y'" >&2; exit 1; }

echo "glibc-check: $bin needs glibc $needs (highest GLIBC_ symbol version); $doc says $claim"
echo "glibc-check: the symbols of that version:"
objdump -T "$bin" | grep -F "(GLIBC_$needs)" | awk '{print "  " $NF}' | sort -u | head -n 20 || true
if [ "$needs" != "$claim" ]; then
  echo "glibc-check: MISMATCH: update $doc (the binary needs glibc $needs, the document says $claim)" >&2
  exit 1
fi
