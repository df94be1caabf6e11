#!/usr/bin/env bash
# envtest.sh builds envtest's control plane (kube-apiserver and etcd), the
# kubectl the sim and its test use, and kube-controller-manager (whose
# garbage collector the sim and the external mode run) from the source
# modules pinned in
# hack/envtest/go.mod and prints the directory that holds them, ready for
# KUBEBUILDER_ASSETS (with --dir, it prints the directory and builds
# nothing). The binaries are cached per pinned
# version (and go.sum digest) under bin/k8s/; a cached set is reused as is.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
mod="$root/hack/envtest"
k8s=$(awk '$1=="k8s.io/kubernetes"{print $2; exit}' "$mod/go.mod")
# The key hashes the files' contents only, not their paths, so that every
# checkout of the same sources shares one cache key.
bins="kube-apiserver kubectl etcd kube-controller-manager"
sum=$( (echo "$bins"; cat "$mod/go.mod" "$mod/go.sum" "$mod/etcd/main.go") | sha256sum | cut -c1-12)
dir="$root/bin/k8s/${k8s#v}-$(go env GOOS)-$(go env GOARCH)-$sum"

# --dir prints the directory without building anything.
if [ "${1:-}" = "--dir" ]; then
  echo "$dir"
  exit 0
fi

complete=true
for b in $bins; do [ -x "$dir/$b" ] || complete=false; done
if $complete; then
  echo "$dir"
  exit 0
fi

echo "building $bins ($k8s) from source into $dir (cold: about 10 minutes)" >&2
start=$(date +%s)
tmp="$dir.tmp.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
"$root/hack/kubernetes.sh" "$tmp" $bins
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "built envtest binaries in $(( $(date +%s) - start ))s" >&2
echo "$dir"
