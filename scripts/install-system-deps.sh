#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks need. Idempotent: skips what is there.
# Called by .ci/run and by `npm run setup`; safe to run on a developer machine as root.
set -euo pipefail
pkgs=(iptables nftables iproute2 tcpdump wrk procps psmisc)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-system-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "install-system-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-system-deps: ok"
