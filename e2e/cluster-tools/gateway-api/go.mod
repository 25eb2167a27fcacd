// Pins the Gateway API release whose CRD manifests (config/crd/{standard,experimental}/*.yaml in the module)
// scripts/install-k8s-binaries.sh copies into the cache. Nothing here is compiled: the requirement is kept
// only for its version and go.sum checksum, so do not run `go mod tidy` in this directory (it would drop it).
module ambit/e2e/cluster-tools/gateway-api

go 1.26.0

require sigs.k8s.io/gateway-api v1.6.3
