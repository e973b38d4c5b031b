#!/usr/bin/env bash
# Installs the system tools the test suite uses beyond Go: iproute2 and
# nftables (the partition tests build test hosts from network namespaces),
# iptables (to let bridged test traffic through a DROP forward policy),
# curl (a real client for the TLS and access-key tests), and the aws CLI,
# s3cmd and rclone (real clients of the S3 endpoint), and chromium (the
# status page is tested in a real headless browser).
# MinIO and mc (the MinIO client) are not in Debian and not installed here:
# the test harness builds the pinned versions with `go install` on first use.
# Without root, nothing is installed and the tests that need these tools skip
# (or fail when CI is set).
set -euo pipefail
missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
command -v curl >/dev/null 2>&1 || missing+=(curl)
# Run, not just found: a pyenv shim on PATH is found even when the selected
# Python has no such tool. RCLONE_CONFIG keeps rclone from creating
# ~/.config/rclone.
aws --version >/dev/null 2>&1 || missing+=(awscli)
s3cmd --version >/dev/null 2>&1 || missing+=(s3cmd)
RCLONE_CONFIG=/dev/null rclone version >/dev/null 2>&1 || missing+=(rclone)
# A real browser for the status page test.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: missing ${missing[*]}; install them (as root) to run the network partition and S3 client tests" >&2
	exit 0
fi
echo "test-deps: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
