#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks need. Idempotent: skips what is there.
# Called by .ci/run and by `npm run setup`; safe to run on a developer machine as root.
set -euo pipefail
# nginx: the waypoint benchmark's reverse-proxy baseline (run by the benchmark itself, never as a service).
pkgs=(iptables nftables iproute2 tcpdump wrk procps psmisc curl nginx)
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
  # No package may start a daemon here (nginx's postinst would start one on port 80): policy-rc.d says no.
  restore_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && restore_policy=1
  fi
  trap '[ "$restore_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-system-deps: ok"
