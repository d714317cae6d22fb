// kubeadm at the Kubernetes version kaas/versions.py pins, for the tests'
// control plane. Same entry point as upstream's cmd/kubeadm/kubeadm.go.
package main

import (
	"k8s.io/kubernetes/cmd/kubeadm/app"
	utilerrors "k8s.io/kubernetes/cmd/kubeadm/app/util/errors"
)

func main() {
	utilerrors.HandleError(app.Run())
}
