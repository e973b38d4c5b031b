// Package cluster keeps objstore's membership: which nodes exist, where their
// public and private HTTP APIs are, and which of them are alive.
//
// It wraps hashicorp/memberlist (SWIM gossip) behind a Membership value that
// hands the program a member table and one ordered events channel, in the
// spirit of serf.
//
// What it guarantees:
//   - Every member carries the same cluster tag: a node started with another
//     Tag (or another gossip Key) is refused, both by memberlist's packet label
//     and by the metadata checks, and never appears in Members on either side.
//   - Failure detection is eventually accurate: a stopped or unreachable node
//     is declared dead by the SWIM protocol, a node that called Leave is
//     reported as left, and a node that comes back is reported alive again.
//   - A partition heals without operator action: the rejoin loop keeps
//     contacting dead members (and the seeds, when no peer is alive) until the
//     two sides merge, even after memberlist itself has given up on them.
//   - Events for one Membership are delivered in the order they happened, and
//     delivering them never blocks gossip.
//
// What it does not do:
//   - It says who is alive, not what they hold: journal and object sync, and
//     deciding what a returning node missed, happen elsewhere (driven by the
//     events).
//   - Views are per node and only eventually consistent; two nodes may
//     disagree for a few probe intervals, and there is no leader or quorum.
//   - It does not detect slow or partially failed nodes beyond what SWIM's
//     probing sees, and with memberlist v0.7.0 it cannot report the suspect
//     state (see StateSuspect).
package cluster
