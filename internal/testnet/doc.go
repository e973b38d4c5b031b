// Package testnet runs test processes on their own test hosts, made of Linux
// network namespaces joined by a private switch, so that a test can cut one
// host off the network (a partition), which loopback alone cannot do.
//
// A Net is a Linux bridge in the root network namespace with the address
// 10.213.X.1/24, where X is chosen per test process (from its PID, guarded by
// a lock file in /run and a check of the routing table) so that test
// processes running in parallel do not collide. Each Host is a network
// namespace with lo up and one interface, eth0, with the address 10.213.X.k/24
// and a veth into the bridge. There is no default route anywhere: hosts can
// reach each other and the gateway (the test process itself) and nothing
// else, and nothing is NATed or forwarded outward; an nftables bridge table
// additionally drops any frame from a host port that is not ARP or IPv4
// addressed inside the subnet, so a process that adds its own routes cannot
// leak traffic either.
//
// Everything a Net or Host creates (namespaces, links, nftables table,
// iptables rule, lock file, processes) is removed in t.Cleanup, also when the
// test fails. If a test process dies without running its cleanups (for
// example on a go test timeout), the next New in any test process removes
// what that dead process left behind.
//
// The package needs root, iproute2 (ip) and nft; without them New skips the
// test, unless the environment variable CI is non-empty, in which case it
// fails the test instead. It only works on Linux; elsewhere New always skips
// (or fails under CI).
package testnet
