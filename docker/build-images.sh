#!/usr/bin/env bash
# Builds Ambit's three images with the names the Helm chart uses by default: <hub>/<component>:<tag>.
# Usage: docker/build-images.sh [hub] [tag]     (defaults: ambit, the chart's appVersion)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
hub="${1:-ambit}"
tag="${2:-$(sed -n 's/^appVersion: *//p' "$root/charts/ambit/Chart.yaml")}"
for component in controller ztunnel waypoint; do
  docker build -f "$root/docker/Dockerfile" --target "$component" -t "$hub/$component:$tag" "$root"
done
