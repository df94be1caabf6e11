#!/usr/bin/env bash
# npm.sh installs the Azure JavaScript SDKs pinned in
# fakevault/testdata/js/package-lock.json and prints the directory whose
# node_modules holds them, for KVSYNC_JS: fakevault's tests drive the fake
# with them, unmodified, through its proxy (fakevault/js_test.go).
#
#   hack/npm.sh          # installs what is missing, prints the directory
#   hack/npm.sh --dir    # prints the directory, installs nothing
#
# The packages are installed with `npm ci` (the lock file's versions and
# integrity hashes, no install scripts) into bin/js/<key>/, where the key
# hashes package.json and package-lock.json; a complete install is reused
# as is. Without node or npm, or with a node older than the SDKs need, the
# script says so on stderr, prints nothing and succeeds, and the tests skip.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
src="$root/fakevault/testdata/js"
# The key hashes the files' contents only, not their paths, so that every
# checkout of the same sources shares one cache key.
key=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-12)
dir="$root/bin/js/$key"
# npm writes node_modules/.package-lock.json last: its presence marks a
# complete install.
marker="node_modules/.package-lock.json"

if [ "${1:-}" = "--dir" ]; then
  echo "$dir"
  exit 0
fi
if [ -f "$dir/$marker" ]; then
  echo "$dir"
  exit 0
fi
for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    echo "npm: $tool is not installed; the JavaScript SDK tests of fakevault will skip" >&2
    exit 0
  fi
done
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "npm: node $(node --version) is older than the Azure SDKs need (20); the JavaScript SDK tests of fakevault will skip" >&2
  exit 0
fi

echo "npm: installing the Azure JavaScript SDKs into $dir" >&2
start=$(date +%s)
tmp="$dir.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
cp "$src/package.json" "$src/package-lock.json" "$tmp/"
(cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --no-update-notifier --loglevel=warn) >&2
[ -f "$tmp/$marker" ] || { echo "npm: npm ci left no $marker in $tmp" >&2; exit 1; }
# An incomplete directory is replaced; a complete one another run renamed
# into place meanwhile is kept (a rename onto a non-empty directory fails).
[ -f "$dir/$marker" ] || rm -rf "$dir"
mv -T "$tmp" "$dir" 2>/dev/null || [ -f "$dir/$marker" ]
trap - EXIT
rm -rf "$tmp"
echo "npm: installed in $(( $(date +%s) - start ))s" >&2
echo "$dir"
