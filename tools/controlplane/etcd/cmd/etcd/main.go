// etcd at the version kaas/versions.py pins, for the tests' control plane.
// Same entry point as upstream's server/main.go.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
