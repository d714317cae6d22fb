#!/usr/bin/env bash
# Build the tests' control plane from the Go module proxy: kube-apiserver,
# kube-controller-manager and kubeadm at kaas/versions.py's KUBERNETES, etcd, etcdctl
# and etcdutl at its ETCD, into .cache/controlplane/bin (ignored). A no-op when the
# binaries are up to date (same go.mod, go.sum, sources, Go version and flags as the
# last build).
#
#   tools/controlplane/build.sh            # build (or nothing to do)
#   GOFLAGS=-p=1 nice -n 10 tools/controlplane/build.sh   # gentler on a shared machine
#
# Go's module cache (go env GOMODCACHE) and build cache (go env GOCACHE) are
# reused between runs; a cold build downloads and compiles k8s.io/kubernetes.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tools/controlplane
out=${KAAS_CONTROLPLANE_BIN:-.cache/controlplane/bin}

command -v go >/dev/null || { echo "build.sh: go not found (install Go >= 1.24)" >&2; exit 1; }

pinned() { sed -nE "s/^$1 = \"([^\"]+)\"$/\\1/p" kaas/versions.py; }
kubernetes=$(pinned KUBERNETES)
etcd=$(pinned ETCD)
[[ -n $kubernetes && -n $etcd ]] || { echo "build.sh: cannot read KUBERNETES/ETCD from kaas/versions.py" >&2; exit 1; }

# The go.mod files must build exactly the pinned versions: say so instead of
# quietly building something else after a version bump.
minor=${kubernetes#*.}
staging="v0.${minor}"
version_of() {  # module dir, module path -> the version the build uses
  (cd "$here/$1" && GOFLAGS=-mod=readonly GOTOOLCHAIN=local go list -m -f '{{.Version}}' "$2")
}
check() {  # module dir, module path, wanted version
  local got
  got=$(version_of "$1" "$2")
  [[ $got == "$3" ]] || { echo "build.sh: $here/$1 builds $2 $got, kaas/versions.py pins $3; update go.mod (see README)" >&2; exit 1; }
}
check kubernetes k8s.io/kubernetes "v$kubernetes"
check kubernetes k8s.io/api "$staging"  # the staging modules, through the replace lines
check kubernetes k8s.io/apiserver "$staging"
if grep -E '=> k8s.io/' $here/kubernetes/go.mod | grep -vqE " ${staging//./\\.}\$"; then
  echo "build.sh: $here/kubernetes/go.mod replaces a staging module with a version other than $staging" >&2; exit 1
fi
check etcd go.etcd.io/etcd/server/v3 "v$etcd"
check etcd go.etcd.io/etcd/etcdctl/v3 "v$etcd"
check etcd go.etcd.io/etcd/etcdutl/v3 "v$etcd"

# What upstream's hack/lib/version.sh stamps into a release build (the API
# server's /version and kubeadm's version checks read it).
kv="v$kubernetes"
major=${kubernetes%%.*}
minor_only=${minor%%.*}
ldflags=""
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  ldflags+=" -X $pkg.gitVersion=$kv -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor_only"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false ${GOFLAGS:-}"
stamp=$( { go version; echo "$ldflags $CGO_ENABLED $GOFLAGS"; cat $here/build.sh;
           find $here -name go.mod -o -name go.sum -o -name '*.go' | LC_ALL=C sort | xargs cat; } | sha256sum | cut -d' ' -f1)
binaries=(kube-apiserver kube-controller-manager kubeadm etcd etcdctl etcdutl)
up_to_date=yes
for b in "${binaries[@]}"; do [[ -x $out/$b ]] || up_to_date=no; done
if [[ $up_to_date == yes && -f $out/.stamp && $(cat "$out/.stamp") == "$stamp" ]]; then
  echo "build.sh: $out is up to date (Kubernetes $kv, etcd v$etcd)"
  exit 0
fi

mkdir -p "$out"
rm -f "$out/.stamp"
abs_out=$(cd "$out" && pwd)
start=$SECONDS
# etcdutl's upstream main has no entry point to call (its root command is in package
# main), so it is built as upstream's own main package, a `tool` of the etcd module.
(cd $here/etcd && go build -o "$abs_out/" ./cmd/etcd ./cmd/etcdctl go.etcd.io/etcd/etcdutl/v3)
echo "build.sh: etcd v$etcd built in $((SECONDS - start)) s"
start=$SECONDS
(cd $here/kubernetes && go build -ldflags "$ldflags" -o "$abs_out/" ./cmd/kube-apiserver ./cmd/kube-controller-manager ./cmd/kubeadm)
echo "build.sh: Kubernetes $kv built in $((SECONDS - start)) s"
echo "$stamp" > "$out/.stamp"
"$out/kube-apiserver" --version
"$out/etcd" --version | head -1
