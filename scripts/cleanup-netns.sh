#!/usr/bin/env bash
# Deletes leftover Ambit test network namespaces and kills the processes still inside them.
#   scripts/cleanup-netns.sh            every netns whose name starts with "amb-" (all Ambit e2e topologies)
#   scripts/cleanup-netns.sh amb-t3f9a  only that run's: "amb-t3f9a" itself and "amb-t3f9a-*"
# For when a test process died too hard to clean up after itself (SIGKILL, OOM, a power cut of the VM).
# Touches nothing else: processes are found by the netns they are in, namespaces by name.
set -uo pipefail
prefix="${1:-amb-}"
case "$prefix" in
  amb-*) ;;
  *) echo "cleanup-netns: prefix must start with amb- (got '$prefix')" >&2; exit 2 ;;
esac
if [ "$(id -u)" != 0 ]; then echo "cleanup-netns: must run as root" >&2; exit 1; fi

# The default prefix "amb-" matches every Ambit netns; a run's prefix matches itself and "<prefix>-*" only,
# so cleaning amb-t1 does not touch amb-t12.
matches() {
  if [ "$prefix" = "amb-" ]; then [[ "$1" == amb-* ]]; else [[ "$1" == "$prefix" || "$1" == "$prefix"-* ]]; fi
}

names=()
while read -r name _; do
  [ -n "$name" ] && matches "$name" && names+=("$name")
done < <(ip netns list 2>/dev/null)
if [ ${#names[@]} -eq 0 ]; then echo "cleanup-netns: nothing to clean for '$prefix'"; exit 0; fi

pids_in() { for ns in "${names[@]}"; do ip netns pids "$ns" 2>/dev/null; done | sort -u; }

# SIGTERM first so well-behaved programs (tcpdump flushing a capture) exit cleanly, then SIGKILL.
pids=$(pids_in)
[ -n "$pids" ] && kill -TERM $pids 2>/dev/null
for _ in $(seq 1 20); do  # at most 2 s
  [ -z "$(pids_in)" ] && break
  sleep 0.1
done
pids=$(pids_in)
[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
for _ in $(seq 1 50); do  # at most 5 s for the kernel to reap them
  [ -z "$(pids_in)" ] && break
  sleep 0.1
done

# Pods (longest names) first; deleting a netns also deletes the veth ends inside it.
failed=0
for ns in $(printf '%s\n' "${names[@]}" | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-); do
  ip netns del "$ns" || failed=1
done
left=$(ip netns list 2>/dev/null | while read -r name _; do matches "$name" && echo "$name"; done)
if [ -n "$left" ] || [ $failed -ne 0 ]; then
  echo "cleanup-netns: could not delete: ${left:-?}" >&2
  exit 1
fi
echo "cleanup-netns: deleted ${#names[@]} netns (${names[*]}) and killed their processes"
