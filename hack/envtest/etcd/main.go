// Command etcd is etcd's server entry point, built from the same module graph
// as kube-apiserver so envtest's control plane needs no downloaded binaries.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
