// etcdctl at the etcd version kaas/versions.py pins, for the tests' control
// plane. Same entry point as upstream's etcdctl/main.go.
package main

import (
	"go.etcd.io/etcd/etcdctl/v3/ctlv3"
)

func main() {
	ctlv3.MustStart()
}
