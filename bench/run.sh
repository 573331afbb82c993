#!/bin/sh
# make bench: fived's benchmark suite.  Needs root (network namespaces, TUN
# devices, sshd); installs the peers it compares against from Debian
# packages when missing; writes bench/REPORT.md, bench/results/*.csv and
# bench/plots/*.png.  Options are passed to bench/bench.py (--quick for a
# short run, --only wan|loopback|memory|attack|resume|shim|cluster|sessioncost to run one
# part; --systems KEY,... for some loopback systems alone; --baseline FIVED: sessioncost
# measures that binary too, in the same rounds).
#
# Everything runs on loopback or inside network namespaces named
# fivebench-*; every process started is stopped by its pid and every
# namespace deleted at the end, also on failure or Ctrl-C.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
python=/usr/bin/python3

if [ "$(id -u)" != 0 ]; then
	echo "bench: needs root (it creates network namespaces, TUN devices and runs sshd);" >&2
	echo "bench: run: sudo make bench" >&2
	exit 1
fi

# The peers measured and the tools the bench uses, from Debian.
PKGS="socat stunnel4 spiped openssh-server openssh-client haproxy redis-server gnuplot-nox iproute2 \
procps util-linux python3 openssl linux-perf"
missing=
for p in $PKGS; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "bench: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	# shellcheck disable=SC2086
	apt-get install -y $missing
fi

# fived itself; other people may be editing src/, so a failed build is
# retried a few times before giving up.  BENCH_SKIP_BUILD=1 measures the
# binaries already in build/ (the report names the source revision).
tries=0
until [ "${BENCH_SKIP_BUILD:-0}" = 1 ] || make -C "$repo" all >/dev/null; do
	tries=$((tries + 1))
	if [ "$tries" -ge 5 ]; then
		echo "bench: make all keeps failing" >&2
		exit 1
	fi
	echo "bench: make all failed; retrying in 60 s" >&2
	sleep 60
done

state=$(mktemp -d /tmp/fivebench.XXXXXX)
build="$state/bin"
mkdir -p "$build"

cleanup() {
	status=$?
	trap - EXIT INT TERM
	# bench.py stops what it started; this catches anything left if it died hard.
	if [ -f "$state/pids" ]; then
		while read -r pid; do
			kill "$pid" 2>/dev/null || true
		done <"$state/pids"
		sleep 1
		while read -r pid; do
			kill -9 "$pid" 2>/dev/null || true
		done <"$state/pids"
	fi
	if [ -f "$state/netns" ]; then
		while read -r ns; do
			case "$ns" in
			fivebench-*) ip netns del "$ns" 2>/dev/null || true ;;
			esac
		done <"$state/netns"
	fi
	rm -rf "$state"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

CFLAGS="-O2 -g -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
-Wmissing-prototypes -Wformat=2 -Wvla"
# benchtool's sealed sessions go through libfive's own connection code (libfive-internal.a:
# it times the handshake and the records apart).
# shellcheck disable=SC2086
cc $CFLAGS -I"$repo/include" -I"$repo/src" -o "$build/benchtool" "$here/benchtool.c" \
	"$repo/build/libfive-internal.a" $(pkg-config --libs libsodium openssl jansson libuv inih) -lpthread
# shellcheck disable=SC2086
cc $CFLAGS -o "$build/delayline" "$here/delayline.c"

# 10,000 idle sessions relayed by a proxy need 20,000 descriptors in it.
# Raising the hard limit needs CAP_SYS_RESOURCE; without it the soft limit
# goes up to the hard one and bench.py sizes the memory test to fit.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -H -n)"

"$python" "$here/bench.py" --state "$state" --repo "$repo" --build "$build" "$@"
