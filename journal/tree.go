package journal

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/oklog/ulid/v2"
)

// The journal keeps a hash tree over its entries so that two nodes can find
// which entries differ at a cost that grows with the difference, not with
// the journal's size. Every entry falls in one of TreeLeaves leaves, chosen
// by a hash of its ID so that leaves fill evenly whatever IDs clients
// choose. A leaf's digest is the XOR of the hashes of its entries' (ID,
// version) pairs; an inner node's digest is the XOR of its children's. XOR
// makes every update O(1): the old entry's hash is XORed out and the new
// one's in. The digests live in memory (1.3 MiB), are rebuilt at Open, and
// a persistent index (bucket "sync": leaf || ID) lists each leaf's entries.
const (
	// TreeFanout is the number of children of an inner node.
	TreeFanout = 16
	// TreeDepth is the number of levels below the root; leaves are at this
	// level.
	TreeDepth = 4
	// TreeLeaves is the number of leaves, TreeFanout^TreeDepth.
	TreeLeaves = 1 << 16
)

// Digest summarizes a set of entries: equal sets have equal digests, and
// distinct sets have distinct digests with overwhelming probability.
type Digest [16]byte

func (d *Digest) xor(o Digest) {
	for i := range d {
		d[i] ^= o[i]
	}
}

// TreeNode is the digest and entry count of one node of the hash tree.
type TreeNode struct {
	Digest Digest
	Count  uint32
}

// Summary names one version of one entry, what anti-entropy compares.
type Summary struct {
	ID      ulid.ULID
	Version Version
}

// LeafOf returns the leaf of the hash tree that entry id belongs to.
func LeafOf(id ulid.ULID) uint16 {
	h := sha256.Sum256(id[:])
	return binary.BigEndian.Uint16(h[:2])
}

// entryDigest hashes what identifies one write of one entry. The version
// alone determines the entry's contents, since every write has its own.
func entryDigest(id ulid.ULID, v Version) Digest {
	var b [16 + 8 + 4 + 16]byte
	copy(b[:16], id[:])
	binary.BigEndian.PutUint64(b[16:], uint64(v.Time.Wall))
	binary.BigEndian.PutUint32(b[24:], v.Time.Logical)
	copy(b[28:], v.Node[:])
	h := sha256.Sum256(b[:])
	var d Digest
	copy(d[:], h[:16])
	return d
}

// tree holds the leaves; inner nodes are computed from them on demand.
type tree struct {
	mu     sync.Mutex // guards leaves
	leaves []TreeNode
}

func newTree() *tree { return &tree{leaves: make([]TreeNode, TreeLeaves)} }

// treeDelta is one leaf change made by a transaction, applied to the tree
// only once the transaction commits.
type treeDelta struct {
	leaf  uint16
	xor   Digest
	count int32
}

func (t *tree) apply(ds []treeDelta) {
	if len(ds) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, d := range ds {
		l := &t.leaves[d.leaf]
		l.Digest.xor(d.xor)
		l.Count = uint32(int64(l.Count) + int64(d.count))
	}
}

// children returns the TreeFanout children of each given node at level
// (0 is the root, whose only index is 0), in order.
func (t *tree) children(level int, nodes []uint32) ([]TreeNode, error) {
	if level < 0 || level >= TreeDepth {
		return nil, fmt.Errorf("journal: tree level %d has no children (levels 0 to %d do)", level, TreeDepth-1)
	}
	width := uint32(1) << (4 * level) // nodes at level
	span := uint32(TreeLeaves) >> (4 * (level + 1))
	out := make([]TreeNode, 0, len(nodes)*TreeFanout)
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range nodes {
		if n >= width {
			return nil, fmt.Errorf("journal: tree level %d has no node %d", level, n)
		}
		for c := uint32(0); c < TreeFanout; c++ {
			first := (n*TreeFanout + c) * span
			var node TreeNode
			for _, l := range t.leaves[first : first+span] {
				node.Digest.xor(l.Digest)
				node.Count += l.Count
			}
			out = append(out, node)
		}
	}
	return out, nil
}
