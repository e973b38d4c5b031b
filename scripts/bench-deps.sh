#!/usr/bin/env bash
# Installs what `make bench` measures objstore beside, and with, from
# Debian's packages: nginx (its proxy_cache is the cache people would pick
# instead), wrk (the load generator) and taskset (util-linux, to pin the
# servers and the load generator to separate cores). MinIO is built by the
# harness itself with `go install`, as in the tests.
set -euo pipefail
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "bench-deps: missing ${missing[*]}; install them (as root, with apt-get) to run make bench" >&2
	exit 1
fi
echo "bench-deps: installing ${missing[*]}"
apt-get update -qq
# Installing nginx must not start Debian's default server on port 80: the
# harness runs its own on a free loopback port.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod +x "$policy"
	trap 'rm -f "$policy"' EXIT
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
