#!/usr/bin/env bash
# azcli.sh makes a current Azure CLI runnable here and prints the path of
# its `az`: Debian trixie's azure-cli, in a root filesystem of its own
# (debootstrap, minbase) under bin/azcli/, so that the host's Python is left
# alone. The suites follow the doctor's az fixes with it (KVSYNC_AZ).
#
#   hack/azcli.sh          # builds what is missing, prints the az to run
#   hack/azcli.sh --dir    # prints the directory, builds nothing
#
# The printed az runs the CLI in that root, in a mount namespace of its
# own: the directories its environment names (AZURE_CONFIG_DIR,
# REQUESTS_CA_BUNDLE, TMPDIR) and /tmp are bound in at the same paths, so
# that it reads and writes the host's files as an installed az would.
# Building and running it need root (debootstrap, unshare, chroot); without
# root the script says so on stderr, prints nothing and succeeds, and the
# suites report the az fixes as not followed.
#
# Why not the host's package: bookworm's azure-cli 2.45 cannot run `az role
# assignment create` (its authorization SDK lacks the `config` attribute the
# command reads) or `az keyvault secret set-attributes` (its vendored
# Key Vault SDK lacks the 7.0 API), two of the doctor's fixes.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
suite=trixie
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages="azure-cli ca-certificates"
# The key hashes the contents of the inputs, not their paths.
key=$( (echo "$suite $packages"; cat "$root/hack/azcli.sh") | sha256sum | cut -c1-12)
dir="$root/bin/azcli/$suite-$key"

if [ "${1:-}" = "--dir" ]; then
  echo "$dir"
  exit 0
fi
if [ -x "$dir/az" ]; then
  echo "$dir/az"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "azcli: building and running Debian's Azure CLI in its own root needs root; the az fixes will not be followed (or put a current az on PATH)" >&2
  exit 0
fi

log() { echo "azcli: $*" >&2; }
start=$(date +%s)
tmp="$dir.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
cleanup() {
  umount "$tmp/rootfs/proc" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
command -v debootstrap >/dev/null || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}
# debootstrap installs the base system only: its resolver does not follow
# virtual packages, which azure-cli's dependencies use, so apt installs
# the CLI inside the root afterwards.
log "debootstrap $suite into $dir (cold: about 4 minutes)"
debootstrap --variant=minbase "$suite" "$tmp/rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
  { tail -30 "$tmp/debootstrap.log" >&2; exit 1; }
mount -t proc proc "$tmp/rootfs/proc"
log "apt-get install $packages"
chroot "$tmp/rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -c \
  "apt-get install -y -qq --no-install-recommends $packages && apt-get clean" >"$tmp/apt.log" 2>&1 ||
  { tail -30 "$tmp/apt.log" >&2; exit 1; }
umount "$tmp/rootfs/proc"

cat >"$tmp/az" <<'EOF'
#!/bin/sh
# az runs Debian's Azure CLI from the root filesystem next to this file
# (hack/azcli.sh), with the directories its environment names bound in.
set -e
here=$(cd "$(dirname "$0")" && pwd)
exec unshare --mount --propagation private /bin/sh -c '
set -e
rootfs=$1; shift
for d in /tmp "${TMPDIR:-}" "$(dirname "${AZURE_CONFIG_DIR:-/}")" "$(dirname "${REQUESTS_CA_BUNDLE:-/}")"; do
  case "$d" in ""|/) continue ;; esac
  [ -d "$d" ] || continue
  mkdir -p "$rootfs$d"
  mount --bind "$d" "$rootfs$d"
done
mount -t proc proc "$rootfs/proc"
exec chroot "$rootfs" /usr/bin/env HOME=/root PATH=/usr/bin:/bin PYTHONWARNINGS=ignore /usr/bin/az "$@"
' sh "$here/rootfs" "$@"
EOF
chmod 0755 "$tmp/az"
"$tmp/az" version --query '"azure-cli"' -o tsv >"$tmp/version" 2>"$tmp/version.err" ||
  { cat "$tmp/version.err" >&2; exit 1; }
rm -f "$tmp/debootstrap.log" "$tmp/apt.log" "$tmp/version.err"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
log "Azure CLI $(cat "$dir/version") in $(( $(date +%s) - start ))s"
echo "$dir/az"
