#!/usr/bin/env bash
# Builds the test and dev infrastructure from Go modules into a per-user cache keyed by
# version (never inside the repository), so a fresh clone reuses what was built before.
#
#   hack/tools.sh build [kubernetes|etcd|helm|crictl|pause|node|keda|all]   build what is missing
#   hack/tools.sh path NAME                                print a binary's cached path
#                                                          (keda-crds: KEDA's CRD directory)
#   hack/tools.sh bindir                                   print the directory of all binaries
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache="${TFLOW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/temporal-flow}"
export GOFLAGS="${GOFLAGS:-} -trimpath"
export CGO_ENABLED=0

# The control plane, kubectl, and the node (kubelet, kube-proxy) with its scheduler: one
# set, since they come from the same module graph and share the build cache.
KUBERNETES_COMMANDS="kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy"

bindir_for() { echo "$cache/bin/$1-$2"; }

log() { printf '[tools] %s\n' "$*" >&2; }

# The binaries are installed atomically: built into a temporary directory that is renamed
# into place only once every binary of the set exists, so an interrupted build is redone.
install_dir() {
  local final="$1" tmp="$2"
  mkdir -p "$(dirname "$final")"
  rm -rf "$final"
  mv "$tmp" "$final"
}

build_kubernetes() {
  local v="$KUBERNETES_VERSION" out
  out="$(bindir_for kubernetes "$v")"
  local cmd missing=0
  for cmd in $KUBERNETES_COMMANDS; do
    [[ -x "$out/$cmd" ]] || missing=1
  done
  [[ $missing = 0 ]] && return 0
  log "building $KUBERNETES_COMMANDS $v (cold: tens of minutes)"
  local work
  work="$(mktemp -d "$cache/build-k8s.XXXXXX")"
  local gomod
  gomod="$(cd "$work" && go mod download -json "k8s.io/kubernetes@$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  local minor="${v#v1.}"
  {
    echo "module tflow.local/k8s-tools"
    echo
    echo "go 1.25.0"
    echo
    echo "require k8s.io/kubernetes $v"
    echo
    echo "replace ("
    # Every staging module k8s.io/kubernetes replaces with ./staging/... is published as
    # its own module at v0.<minor>.<patch>.
    grep -E '^\s+k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" |
      awk -v ver="v0.$minor" '{print "\t" $1 " => " $1 " " ver}'
    echo ")"
  } >"$work/go.mod"
  cat >"$work/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
  local major=1 minor_only="${minor%%.*}"
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor_only -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  (
    cd "$work"
    # Resolves the staging modules' dependencies into go.sum; a failure stops the build
    # here, with Go's own message, rather than as a missing-module error later.
    go mod tidy
    go mod download
    mkdir -p "$work/out"
    for cmd in $KUBERNETES_COMMANDS; do
      log "  go build $cmd"
      go build -tags tools -ldflags "$ld" -o "$work/out/$cmd" "k8s.io/kubernetes/cmd/$cmd"
    done
  )
  install_dir "$out" "$work/out"
  rm -rf "$work"
}

build_etcd() {
  local v="$ETCD_VERSION" out
  out="$(bindir_for etcd "$v")"
  [[ -x "$out/etcd" ]] && return 0
  log "building etcd $v"
  local work
  work="$(mktemp -d "$cache/build-etcd.XXXXXX")"
  # etcd's server module has replace directives for its sibling modules, so `go install
  # module@version` refuses it; a wrapper module that requires it builds the same code.
  printf 'module tflow.local/etcd-tools\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$v" >"$work/go.mod"
  (
    cd "$work"
    # No `go mod tidy`: the wrapper has no Go files, so it would only drop the require.
    go get "go.etcd.io/etcd/server/v3@$v"
    go build -ldflags "-s -w" -o "$work/out/etcd" go.etcd.io/etcd/server/v3
  )
  install_dir "$out" "$work/out"
  rm -rf "$work"
}

build_helm() {
  local v="$HELM_VERSION" out
  out="$(bindir_for helm "$v")"
  [[ -x "$out/helm" ]] && return 0
  log "building helm $v"
  local work k8s_minor="${KUBERNETES_VERSION#v1.}"
  k8s_minor="${k8s_minor%%.*}"
  work="$(mktemp -d "$cache/build-helm.XXXXXX")"
  # Helm's default Kubernetes version (used by `helm template` and lint) comes from
  # link-time variables; point it at the control plane version the project pins.
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$v"
  ld="$ld -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor"
  GOBIN="$work/out" go install -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$v"
  install_dir "$out" "$work/out"
  rm -rf "$work"
}

# The pod sandbox's pause process: Kubernetes' own pause.c from the k8s.io/kubernetes
# module, linked statically so the image holds nothing but it.
build_pause() {
  local v="$KUBERNETES_VERSION" out dir
  out="$(bindir_for pause "$v")"
  [[ -x "$out/pause" ]] && return 0
  log "building pause from k8s.io/kubernetes $v"
  local work
  work="$(mktemp -d "$cache/build-pause.XXXXXX")"
  dir="$(cd "$work" && go mod download -json "k8s.io/kubernetes@$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  mkdir -p "$work/out"
  cc -Os -Wall -Werror -static -DVERSION="\"$v-tflow\"" -o "$work/out/pause" "$dir/build/pause/linux/pause.c"
  strip "$work/out/pause"
  install_dir "$out" "$work/out"
  rm -rf "$work"
}

build_crictl() {
  local v="$CRI_TOOLS_VERSION" out
  out="$(bindir_for cri-tools "$v")"
  [[ -x "$out/crictl" ]] && return 0
  log "building crictl $v"
  local work
  work="$(mktemp -d "$cache/build-crictl.XXXXXX")"
  GOBIN="$work/out" go install -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$v" \
    "sigs.k8s.io/cri-tools/cmd/crictl@$v"
  install_dir "$out" "$work/out"
  rm -rf "$work"
}

build_keda() {
  local v="$KEDA_VERSION" out
  out="$(bindir_for keda "$v")"
  if [[ -x "$out/keda" && -x "$out/keda-adapter" && -f "$out/crds/keda.sh_scaledobjects.yaml" ]]; then
    return 0
  fi
  log "building the KEDA operator and metrics apiserver $v (cold: 15-30 minutes)"
  local work dir
  work="$(mktemp -d "$cache/build-keda.XXXXXX")"
  # KEDA's module carries replace and exclude directives, which `go install module@version`
  # refuses; built as the main module from its own tree in the module cache, they apply
  # (the tree is read-only, but a build only reads it and its complete go.sum).
  dir="$(cd "$work" && go mod download -json "github.com/kedacore/keda/v2@$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  mkdir -p "$work/out/crds"
  log "  go build ./cmd/operator"
  (cd "$dir" && go build -ldflags "-s -w -X github.com/kedacore/keda/v2/version.Version=$v" -o "$work/out/keda" ./cmd/operator)
  # The metrics apiserver serves the external metrics the HPA scales 1 -> N on.
  log "  go build ./cmd/adapter"
  (cd "$dir" && go build -ldflags "-s -w -X github.com/kedacore/keda/v2/version.Version=$v" -o "$work/out/keda-adapter" ./cmd/adapter)
  # The CRDs of this very version go next to the binary (ScaledObject, ScaledJob,
  # TriggerAuthentication, ClusterTriggerAuthentication and the eventing kinds).
  cp "$dir"/config/crd/bases/*.yaml "$work/out/crds/"
  chmod u+w "$work/out/crds"/*.yaml
  install_dir "$out" "$work/out"
  rm -rf "$work"
}

cmd="${1:-}"
case "$cmd" in
  build)
    mkdir -p "$cache"
    what="${2:-all}"
    case "$what" in
      kubernetes) build_kubernetes ;;
      etcd) build_etcd ;;
      helm) build_helm ;;
      keda) build_keda ;;
      crictl) build_crictl ;;
      pause) build_pause ;;
      node) build_crictl; build_pause ;;
      all) build_etcd; build_helm; build_kubernetes; build_crictl; build_pause ;;
      *) echo "unknown tool set: $what" >&2; exit 2 ;;
    esac
    ;;
  path)
    case "${2:-}" in
      kube-apiserver | kube-controller-manager | kube-scheduler | kubectl | kubelet | kube-proxy) echo "$(bindir_for kubernetes "$KUBERNETES_VERSION")/$2" ;;
      etcd) echo "$(bindir_for etcd "$ETCD_VERSION")/etcd" ;;
      helm) echo "$(bindir_for helm "$HELM_VERSION")/helm" ;;
      keda) echo "$(bindir_for keda "$KEDA_VERSION")/keda" ;;
      keda-adapter) echo "$(bindir_for keda "$KEDA_VERSION")/keda-adapter" ;;
      crictl) echo "$(bindir_for cri-tools "$CRI_TOOLS_VERSION")/crictl" ;;
      pause) echo "$(bindir_for pause "$KUBERNETES_VERSION")/pause" ;;
      keda-crds) echo "$(bindir_for keda "$KEDA_VERSION")/crds" ;;
      *) echo "unknown binary: ${2:-}" >&2; exit 2 ;;
    esac
    ;;
  cache) echo "$cache" ;;
  *)
    sed -n '2,8p' "$0" >&2
    exit 2
    ;;
esac
