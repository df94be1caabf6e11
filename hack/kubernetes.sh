#!/usr/bin/env bash
# kubernetes.sh builds commands of Kubernetes (and etcd) from the source
# modules pinned in hack/envtest/go.mod into DIR, with the one set of flags
# every build here uses, so that envtest's binaries and the kind node
# image's share Go's build cache:
#
#   hack/kubernetes.sh DIR kube-apiserver kubectl etcd ...
#
# A name is a command under k8s.io/kubernetes/cmd/, or etcd.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
mod="$root/hack/envtest"
dir=$1
shift
k8s=$(awk '$1=="k8s.io/kubernetes"{print $2; exit}' "$mod/go.mod")
pkgs=()
for name in "$@"; do
  case "$name" in
    etcd) pkgs+=(./etcd) ;;
    *) pkgs+=("k8s.io/kubernetes/cmd/$name") ;;
  esac
done
ver="k8s.io/component-base/version"
cd "$mod"
CGO_ENABLED=0 go build -o "$dir/" \
  -ldflags "-s -w -X $ver.gitVersion=$k8s -X $ver.gitMajor=1 -X $ver.gitMinor=$(echo "$k8s" | cut -d. -f2)" \
  "${pkgs[@]}"
