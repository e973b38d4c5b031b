package cluster

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/oklog/ulid/v2"
)

// Owner picks, among candidates, the member that owns the object id: the
// one to which every node routes a fill of id, so that a cold object asked
// of many nodes at once is fetched from the origin once. It is rendezvous
// (highest random weight) hashing: each candidate scores hash(member, id)
// and the highest wins, so every node that sees the same members picks
// the same owner, and a member joining or leaving moves only the objects
// it wins or owned. ok is false when there are no candidates.
func Owner(candidates []Member, id ulid.ULID) (owner Member, ok bool) {
	var best uint64
	for _, m := range candidates {
		s := score(m.ID, id)
		if !ok || s > best || s == best && m.ID.Compare(owner.ID) > 0 {
			owner, best, ok = m, s, true
		}
	}
	return owner, ok
}

// score is a stable 64-bit hash of a member and an object, the same in
// every build and process; SHA-256 makes scores of IDs that differ in a few
// bits independent, at a cost that does not matter for a few members.
func score(member, id ulid.ULID) uint64 {
	h := sha256.New()
	h.Write(member[:])
	h.Write(id[:])
	return binary.BigEndian.Uint64(h.Sum(nil))
}
