#!/usr/bin/env bash
# Builds the Kubernetes binaries the cluster-in-a-box e2e tests run, from their Go modules through the Go
# module proxy (no release downloads), into a cache outside the repo. Idempotent: a warm cache returns at once.
#
#   kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, kubectl   k8s.io/kubernetes
#   etcd, etcdctl                                                                  go.etcd.io/etcd/*/v3
#   helm                                                                           helm.sh/helm/v3
#   coredns                                                                        github.com/coredns/coredns
#   crds/gateway-api/{standard,experimental}/*.yaml                                sigs.k8s.io/gateway-api
#
# The pins are the go.mod files under e2e/cluster-tools/ (one module per tool, so each keeps the dependency
# versions it was released with). Cache layout, ${AMBIT_CACHE:-$HOME/.cache/ambit}:
#   k8s/<kubernetes version>-<hash of e2e/cluster-tools go.mod/go.sum + RECIPE>/bin/<binary>
#   k8s/<...>/crds/gateway-api/{standard,experimental}/   k8s/<...>/stamp.json (written last)
#   go/mod (GOMODCACHE), go/build (GOCACHE): kept so CI and rebuilds after a pin change reuse them
# e2e/src/cluster/binaries.ts (k8sBinaries()) finds the binaries through stamp.json.
#
# Cold build, measured from an empty cache on the 2-core development machine (Go 1.26.8, `nice -n 19`, other
# test runs sharing the CPUs, load ~5): 1126 s, ~19 min. Module downloads 54 s; then, each reusing the packages
# the ones before it compiled: kube-apiserver 568 s, kube-controller-manager 100 s, kube-scheduler 7 s,
# kube-proxy 9 s, kubectl 29 s, etcd 37 s, etcdctl 2 s, helm 93 s, coredns 226 s. Warm run: ~0.1 s.
# Disk: ~0.5 GB of binaries per build, ~7 GB of Go module and build caches.
set -euo pipefail

# Bump when the build commands below change, so that existing caches are rebuilt.
RECIPE=1

started_ns=$(date +%s%N)
elapsed() { echo "$(( ($(date +%s%N) - started_ns) / 1000000 )) ms"; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=$ROOT/e2e/cluster-tools
CACHE=${AMBIT_CACHE:-$HOME/.cache/ambit}
log() { echo "install-k8s-binaries: $*"; }
die() { echo "install-k8s-binaries: $*" >&2; exit 1; }

# The version a go.mod requires of a module, read without running go (the warm path must not need the
# module cache). Matches `require path vX` and the `path vX // indirect` lines `go mod tidy` writes for tools.
pinned() {
  awk -v m="$2" '($1 == m && $2 ~ /^v/) { print $2; exit } ($1 == "require" && $2 == m) { print $3; exit }' "$TOOLS/$1/go.mod"
}
# sha256 of every go.mod, go.sum and .go file under e2e/cluster-tools, each preceded by its relative path.
# binaries.ts computes the same hash to tell a cache built from other pins.
modules_hash() {
  (cd "$TOOLS" && find . -type f \( -name go.mod -o -name go.sum -o -name '*.go' \) | LC_ALL=C sort |
    while IFS= read -r f; do printf '%s\n' "${f#./}"; cat "$f"; done) | sha256sum | cut -c1-64
}

K8S_VERSION=$(pinned kubernetes k8s.io/kubernetes)
ETCD_VERSION=$(pinned etcd go.etcd.io/etcd/server/v3)
HELM_VERSION=$(pinned helm helm.sh/helm/v3)
COREDNS_VERSION=$(pinned coredns github.com/coredns/coredns)
GATEWAY_API_VERSION=$(pinned gateway-api sigs.k8s.io/gateway-api)
for v in K8S_VERSION ETCD_VERSION HELM_VERSION COREDNS_VERSION GATEWAY_API_VERSION; do
  [ -n "${!v}" ] || die "cannot read $v from the go.mod files under $TOOLS"
done
MODULES_HASH=$(modules_hash)
KEY=$K8S_VERSION-$(printf '%s\nrecipe=%s\n' "$MODULES_HASH" "$RECIPE" | sha256sum | cut -c1-12)
DIR=$CACHE/k8s/$KEY
BIN=$DIR/bin
STAMP=$DIR/stamp.json
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl etcd etcdctl helm coredns)

summary() {
  log "kubernetes $K8S_VERSION, etcd $ETCD_VERSION, helm $HELM_VERSION, coredns $COREDNS_VERSION, gateway-api $GATEWAY_API_VERSION"
  log "binaries: $BIN/{$(IFS=,; echo "${BINARIES[*]}")}"
  log "Gateway API CRDs: $DIR/crds/gateway-api/{standard,experimental}"
  log "stamp: $STAMP"
}
is_warm() {
  [ -f "$STAMP" ] && grep -q "\"key\": \"$KEY\"" "$STAMP" || return 1
  local b
  for b in "${BINARIES[@]}"; do [ -x "$BIN/$b" ] || return 1; done
  [ -d "$DIR/crds/gateway-api/standard" ]
}

if is_warm; then
  summary
  log "warm cache, nothing to build ($(elapsed))"
  exit 0
fi

mkdir -p "$CACHE/k8s" "$BIN"
# One build at a time per cache (CI and a developer, or two checkouts, may share it).
exec 9>"$CACHE/k8s/.lock"
if ! flock -n 9; then
  log "another install holds $CACHE/k8s/.lock; waiting"
  flock 9
fi
if is_warm; then
  summary
  log "built by the other install ($(elapsed))"
  exit 0
fi

GO=$(command -v go || true)
[ -n "$GO" ] || GO=/usr/local/go/bin/go
[ -x "$GO" ] || die "go not found (need Go >= 1.26 on PATH or at /usr/local/go/bin/go)"
GO_VERSION=$("$GO" env GOVERSION)
case "$GO_VERSION" in
  go1.2[6-9]*|go1.[3-9][0-9]*) ;;
  *) die "need Go >= 1.26 (the pinned modules declare go 1.26), found $GO_VERSION" ;;
esac
export GOFLAGS="-mod=mod -modcacherw -buildvcs=false" GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build \
  GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0
# With -mod=mod go would quietly add missing go.sum lines to the repo; a build must not change the pins.
sums_before=$(cat "$TOOLS"/*/go.mod "$TOOLS"/*/go.sum | sha256sum)

log "building into $DIR (Go $GO_VERSION, GOMODCACHE=$GOMODCACHE, GOCACHE=$GOCACHE)"
declare -A took=()
order=()   # keys of took, in build order
total_start=$SECONDS

# The commit a module version was tagged from, when the proxy reports it (.Origin.Hash), else empty.
origin_hash() {
  (cd "$TOOLS/$1" && "$GO" mod download -json "$2@$3") | tr -d '\n' |
    sed -n 's/.*"Origin":[^}]*"Hash": *"\([0-9a-f]*\)".*/\1/p'
}

t=$SECONDS
for m in kubernetes etcd helm coredns; do
  (cd "$TOOLS/$m" && nice -n 19 "$GO" mod download) || die "go mod download failed in e2e/cluster-tools/$m"
done
took[download]=$((SECONDS - t)); order+=(download)
log "modules downloaded (${took[download]}s)"

# build <name> <module dir> <package> <ldflags> [tags]: builds bin/<name> unless a previous (interrupted) run
# of the same key already did; the binary appears only when complete.
build() {
  local name=$1 mod=$2 pkg=$3 ldflags=$4 tags=${5:-}
  if [ -x "$BIN/$name" ]; then log "$name: already built"; return; fi
  local t=$SECONDS
  (cd "$TOOLS/$mod" && nice -n 19 "$GO" build -trimpath -tags "$tags" -ldflags "-s -w $ldflags" \
    -o "$BIN/.$name.tmp" "$pkg") || die "building $name ($pkg) failed"
  mv -f "$BIN/.$name.tmp" "$BIN/$name"
  took[$name]=$((SECONDS - t)); order+=("$name")
  log "$name: ${took[$name]}s"
}

# Kubernetes: the flags of hack/lib/golang.sh for a release build (static, -trimpath, -s -w, these tags) and
# the version variables of hack/lib/version.sh, so `--version` and `kubectl version` report the release.
k8s_commit=$(origin_hash kubernetes k8s.io/kubernetes "$K8S_VERSION")
k8s_minor=${K8S_VERSION#v*.}; k8s_minor=${k8s_minor%%.*}
k8s_major=${K8S_VERSION#v}; k8s_major=${k8s_major%%.*}
k8s_tree=clean
[ -n "$k8s_commit" ] || k8s_tree=archive   # hack/lib/version.sh's word for a build from a source archive
k8s_ldflags=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$k8s_major -X $p.gitMinor=$k8s_minor"
  k8s_ldflags+=" -X $p.gitCommit=$k8s_commit -X $p.gitTreeState=$k8s_tree"
  k8s_ldflags+=" -X $p.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done
for b in kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl; do
  build "$b" kubernetes "k8s.io/kubernetes/cmd/$b" "$k8s_ldflags" selinux,notest,grpcnotrace
done

etcd_commit=$(origin_hash etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION")
etcd_ldflags="-X go.etcd.io/etcd/api/v3/version.GitSHA=${etcd_commit:0:7}"
[ -n "$etcd_commit" ] || etcd_ldflags="-X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION"
build etcd etcd go.etcd.io/etcd/server/v3 "$etcd_ldflags"
build etcdctl etcd go.etcd.io/etcd/etcdctl/v3 "$etcd_ldflags"

# helm: its Makefile's variables, including the Kubernetes version `helm template` assumes (that of the
# client-go helm was released with).
helm_kube=$(cd "$TOOLS/helm" && "$GO" list -m -f '{{.Version}}' k8s.io/client-go)
helm_kube_minor=${helm_kube#v0.}; helm_kube_minor=${helm_kube_minor%%.*}
helm_commit=$(origin_hash helm helm.sh/helm/v3 "$HELM_VERSION")
hv=helm.sh/helm/v3
build helm helm $hv/cmd/helm "-X $hv/internal/version.version=$HELM_VERSION -X $hv/internal/version.gitCommit=$helm_commit \
-X $hv/internal/version.gitTreeState=clean -X $hv/pkg/lint/rules.k8sVersionMajor=1 \
-X $hv/pkg/lint/rules.k8sVersionMinor=$helm_kube_minor -X $hv/pkg/chartutil.k8sVersionMajor=1 \
-X $hv/pkg/chartutil.k8sVersionMinor=$helm_kube_minor"

coredns_commit=$(origin_hash coredns github.com/coredns/coredns "$COREDNS_VERSION")
build coredns coredns github.com/coredns/coredns "-X github.com/coredns/coredns/coremain.GitCommit=${coredns_commit:0:7}"

gw_dir=$(cd "$TOOLS/gateway-api" && "$GO" mod download -json sigs.k8s.io/gateway-api | tr -d '\n' |
  sed -n 's/.*"Dir": *"\([^"]*\)".*/\1/p')
[ -d "$gw_dir/config/crd/standard" ] || die "no config/crd/standard in sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION ($gw_dir)"
rm -rf "$DIR/crds/gateway-api"
for set in standard experimental; do
  mkdir -p "$DIR/crds/gateway-api/$set"
  find "$gw_dir/config/crd/$set" -maxdepth 1 -name '*.yaml' ! -name kustomization.yaml \
    -exec cp {} "$DIR/crds/gateway-api/$set/" \;
done
chmod -R u+w "$DIR/crds"

[ "$(cat "$TOOLS"/*/go.mod "$TOOLS"/*/go.sum | sha256sum)" = "$sums_before" ] ||
  die "the build changed go.mod/go.sum under e2e/cluster-tools (incomplete go.sum?); run go mod tidy there and commit"
took[total]=$((SECONDS - total_start)); order+=(total)

secs=""
for k in "${order[@]}"; do secs+="${secs:+, }\"$k\": ${took[$k]}"; done
bins=""
for b in "${BINARIES[@]}"; do bins+="${bins:+, }\"$b\": \"bin/$b\""; done
cat > "$STAMP.tmp" <<EOF
{
  "key": "$KEY",
  "recipe": $RECIPE,
  "modulesHash": "$MODULES_HASH",
  "versions": {
    "kubernetes": "$K8S_VERSION",
    "etcd": "$ETCD_VERSION",
    "helm": "$HELM_VERSION",
    "coredns": "$COREDNS_VERSION",
    "gatewayApi": "$GATEWAY_API_VERSION",
    "go": "$GO_VERSION"
  },
  "binaries": { $bins },
  "gatewayApiCrds": "crds/gateway-api",
  "buildSeconds": { $secs },
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF
mv -f "$STAMP.tmp" "$STAMP"
summary
log "built in ${took[total]}s ($(for k in "${order[@]}"; do printf '%s %ss ' "$k" "${took[$k]}"; done))"
