#!/usr/bin/env bash
# image.sh builds a kind node image with no container registry: every
# binary from source modules through the Go module proxy, the root
# filesystem from Debian's packages. It prints the image's reference for
# `kind create cluster --image`. It needs a running Docker engine whose
# default runtime lets privileged containers start (hack/kind/dockerd.sh).
#
#   hack/kind/image.sh           # builds what is missing, prints the node image
#   hack/kind/image.sh --name    # prints the node image's reference, builds nothing
#
# Two images, each tagged with a digest of what it is built from, so that a
# second run finds them and builds nothing, and a change of version or of
# this script rebuilds them:
#
#   kvsync/kind-base:<key>  Debian trixie (debootstrap, minbase) with
#       systemd, containerd, runc, the CNI plugins and iptables, plus kind's
#       own node files (entrypoint, systemd units, containerd's
#       configuration) from the kind module pinned below;
#   kvsync/kind-node:<version>-<key>  the base with kubelet, kubeadm,
#       kubectl and crictl, a single-node CNI configuration (ptp and
#       host-local; kind's own kindnetd is not in its module, so clusters
#       disable kind's default CNI: hack/kind/cluster.yaml), and in its
#       containerd the images kubeadm runs: kube-apiserver,
#       kube-controller-manager, kube-scheduler, etcd and the pause
#       container built FROM scratch, kube-proxy on the base (it needs
#       iptables), and CoreDNS.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
kind_version=v0.33.0
suite=trixie
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=systemd,systemd-sysv,dbus,containerd,runc,containernetworking-plugins,iptables,nftables,conntrack,iproute2,ethtool,util-linux,mount,kmod,e2fsprogs,procps,ca-certificates,libseccomp2,jq,bash
k8s=$(awk '$1=="k8s.io/kubernetes"{print $2; exit}' "$root/hack/envtest/go.mod")

# The keys hash the contents of every input, not their paths.
base_key=$( (echo "$suite $packages $kind_version"; cat "$root/hack/kind/image.sh") | sha256sum | cut -c1-12)
node_key=$( (echo "$base_key"; cat "$root/hack/envtest/go.mod" "$root/hack/envtest/go.sum" "$root/hack/envtest/etcd/main.go" \
  "$root/hack/kind/tools/go.mod" "$root/hack/kind/tools/go.sum" "$root/hack/kind/pause/main.go" "$root/hack/kind/node/"*) |
  sha256sum | cut -c1-12)
base="kvsync/kind-base:$base_key"
node="kvsync/kind-node:$k8s-$node_key"

if [ "${1:-}" = "--name" ]; then
  echo "$node"
  exit 0
fi

exists() { docker image inspect "$1" >/dev/null 2>&1; }
log() { echo "kind image: $*" >&2; }

if exists "$node"; then
  echo "$node"
  exit 0
fi

work=$(mktemp -d /tmp/kvsync-kind-image.XXXXXX)
build_container=""
cleanup() {
  [ -n "$build_container" ] && docker rm -f "$build_container" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# kind_files is the directory of kind's node files in the kind module.
kind_files=""
find_kind_files() {
  [ -n "$kind_files" ] && return
  kind_files="$(cd "$root" && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kind@$kind_version" | jq -r .Dir)/images/base/files"
}

# as_node tags image $1 as $2, with a kind node's configuration: systemd
# as its first process through kind's entrypoint, stopped as systemd asks
# to be.
as_node() {
  docker build -q -t "$2" - >/dev/null <<EOF
FROM $1
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
CMD []
EOF
}

# build_base makes the base image: kind's base image's steps on a
# debootstrapped Debian instead of debian:trixie-slim and packages built
# from source.
build_base() {
  local start rootfs files
  start=$(date +%s)
  command -v debootstrap >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  rootfs="$work/rootfs"
  log "debootstrap $suite into $rootfs"
  debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -30 "$work/debootstrap.log" >&2; return 1; }
  find_kind_files
  files=$kind_files
  install -m 0755 "$files"/usr/local/bin/* "$rootfs/usr/local/bin/"
  mkdir -p "$rootfs/kind/bin" "$rootfs/etc/containerd" "$rootfs/etc/systemd/system/kubelet.service.d" "$rootfs/etc/kubernetes/manifests"
  install -m 0644 "$files/kind/README.txt" "$rootfs/kind/"
  install -m 0755 "$files"/kind/bin/* "$rootfs/kind/bin/"
  install -m 0644 "$files"/etc/crictl.yaml "$rootfs/etc/"
  install -m 0644 "$files"/etc/containerd/* "$rootfs/etc/containerd/"
  install -m 0644 "$files"/etc/default/* "$rootfs/etc/default/"
  install -m 0644 "$files"/etc/sysctl.d/* "$rootfs/etc/sysctl.d/"
  install -m 0644 "$files"/etc/systemd/system/*.service "$files"/etc/systemd/system/*.slice "$rootfs/etc/systemd/system/"
  install -m 0644 "$files"/etc/systemd/system/kubelet.service.d/* "$rootfs/etc/systemd/system/kubelet.service.d/"
  # kind's units and configuration name the binaries where its own image
  # installs them: /usr/local/bin and /opt/cni/bin.
  ln -sf /usr/bin/containerd "$rootfs/usr/local/bin/containerd"
  ln -sf /usr/bin/ctr "$rootfs/usr/local/bin/ctr"
  ln -sf /usr/bin/containerd-shim-runc-v2 "$rootfs/usr/local/bin/containerd-shim-runc-v2"
  mkdir -p "$rootfs/opt/cni"
  ln -sfn /usr/lib/cni "$rootfs/opt/cni/bin"
  chroot "$rootfs" sh -c 'ctr oci spec |
      jq ".hooks.createContainer[.hooks.createContainer | length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}" |
      jq "del(.process.rlimits)" > /etc/containerd/cri-base.json'
  chroot "$rootfs" sh -c '
    set -e
    find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
    rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
      /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
      /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
    echo ReadKMsg=no >> /etc/systemd/journald.conf
    ln -sf /usr/lib/systemd/systemd /sbin/init
    systemctl enable kubelet.service containerd.service undo-mount-hacks.service
    systemctl mask systemd-binfmt.service
    apt-get clean
    rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/* /tmp/* /var/tmp/* /usr/share/doc/* /usr/share/man/*'
  log "importing $base"
  tar -C "$rootfs" -c . | docker import - "$base-rootfs" >/dev/null
  rm -rf "$rootfs"
  as_node "$base-rootfs" "$base"
  docker rmi "$base-rootfs" >/dev/null
  log "base image built in $(( $(date +%s) - start ))s"
}

# build_binaries builds every binary of the node and of its images into
# $work/bin.
build_binaries() {
  local start bin
  start=$(date +%s)
  bin="$work/bin"
  log "building Kubernetes $k8s, etcd, crictl, CoreDNS and pause"
  "$root/hack/kubernetes.sh" "$bin" kubelet kubeadm kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd
  (cd "$root/hack/kind/tools" && CGO_ENABLED=0 go build -o "$bin/" -ldflags "-s -w" sigs.k8s.io/cri-tools/cmd/crictl github.com/coredns/coredns)
  (cd "$root" && CGO_ENABLED=0 go build -o "$bin/pause" -ldflags "-s -w" ./hack/kind/pause)
  log "binaries built in $(( $(date +%s) - start ))s"
}

# image builds the image tag from a Dockerfile read on stdin, in a context
# holding the named binaries of $work/bin.
image() {
  local tag=$1 ctx
  shift
  ctx="$work/ctx-${tag//[\/:]/-}"
  mkdir -p "$ctx"
  for b in "$@"; do cp "$work/bin/$b" "$ctx/"; done
  cat >"$ctx/Dockerfile"
  docker build -q -t "$tag" "$ctx" >/dev/null
}

# build_images builds the images kubeadm runs, under the names kubeadm
# and kind's containerd configuration use, and saves them to
# $work/images.tar.
build_images() {
  local registry=registry.k8s.io images=() line name tag etcd coredns pause
  while read -r line; do
    name=${line#"$registry/"}
    tag=${name##*:}
    name=${name%:*}
    case "$name" in
      kube-apiserver | kube-controller-manager | kube-scheduler)
        image "$line" "$name" <<EOF
FROM scratch
COPY $name /usr/local/bin/$name
ENV PATH=/usr/local/bin
ENTRYPOINT ["/usr/local/bin/$name"]
EOF
        ;;
      kube-proxy)
        image "$line" kube-proxy <<EOF
FROM $base
COPY kube-proxy /usr/local/bin/kube-proxy
ENTRYPOINT ["/usr/local/bin/kube-proxy"]
EOF
        ;;
      etcd)
        etcd=$line
        image "$line" etcd <<EOF
FROM scratch
COPY etcd /usr/local/bin/etcd
ENV PATH=/usr/local/bin
ENTRYPOINT ["/usr/local/bin/etcd"]
EOF
        ;;
      coredns/coredns)
        coredns=$line
        image "$line" coredns <<EOF
FROM scratch
COPY coredns /coredns
ENTRYPOINT ["/coredns"]
EOF
        ;;
      pause)
        pause=$line
        image "$line" pause <<EOF
FROM scratch
COPY pause /pause
ENTRYPOINT ["/pause"]
EOF
        ;;
      *)
        echo "kubeadm lists an image this script does not build: $line" >&2
        return 1
        ;;
    esac
    images+=("$line")
  done < <("$work/bin/kubeadm" config images list --kubernetes-version "$k8s")
  [ -n "${etcd:-}" ] && [ -n "${coredns:-}" ] && [ -n "${pause:-}" ] || { echo "kubeadm's image list lacks etcd, CoreDNS or pause" >&2; return 1; }
  # kind's containerd configuration names its own sandbox image.
  find_kind_files
  sandbox=$(sed -n 's/^ *sandbox_image = "\(.*\)"/\1/p' "$kind_files/etc/containerd/config.toml")
  if [ -n "$sandbox" ] && [ "$sandbox" != "$pause" ]; then
    docker tag "$pause" "$sandbox"
    images+=("$sandbox")
  fi
  docker save -o "$work/images.tar" "${images[@]}"
}

# build_node makes the node image: a container of the base with the
# binaries copied in and the images imported into its containerd, then
# committed.
build_node() {
  local start c
  start=$(date +%s)
  c=$(docker run -d --privileged --entrypoint sleep "$base" infinity)
  build_container=$c
  docker cp "$work/bin/kubelet" "$c:/usr/bin/kubelet"
  docker cp "$work/bin/kubeadm" "$c:/usr/bin/kubeadm"
  docker cp "$work/bin/kubectl" "$c:/usr/bin/kubectl"
  docker cp "$work/bin/crictl" "$c:/usr/local/bin/crictl"
  docker exec "$c" mkdir -p /etc/cni/net.d
  docker cp "$root/hack/kind/node/10-kvsync.conflist" "$c:/etc/cni/net.d/10-kvsync.conflist"
  docker cp "$work/images.tar" "$c:/kind/images.tar"
  docker exec -e K8S="$k8s" "$c" bash -c '
    set -euo pipefail
    echo "$K8S" > /kind/version
    containerd >/tmp/containerd.log 2>&1 &
    for _ in $(seq 60); do ctr version >/dev/null 2>&1 && break; sleep 0.5; done
    ctr -n k8s.io images import --all-platforms --no-unpack --digests /kind/images.tar
    for ref in $(ctr -n k8s.io images list -q); do
      ctr -n k8s.io images label "$ref" io.cri-containerd.pinned=pinned >/dev/null
    done
    kill %1
    wait || true
    rm -f /kind/images.tar /tmp/containerd.log'
  docker commit "$c" "$node-committed" >/dev/null
  as_node "$node-committed" "$node"
  docker rmi "$node-committed" >/dev/null
  log "node image built in $(( $(date +%s) - start ))s"
}

exists "$base" || build_base
build_binaries
build_images
build_node
echo "$node"
