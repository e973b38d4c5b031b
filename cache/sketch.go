package cache

import (
	"encoding/binary"
	"math/bits"

	"github.com/oklog/ulid/v2"
)

// sketch is a count-min sketch of 4-bit counters: the approximate access
// frequency W-TinyLFU admits by. Four rows keep over-estimates from hash
// collisions rare; 4-bit counters suffice because admission only compares
// small counts, and saturating at 15 is what makes halving a cheap way to
// age old popularity out. It is not safe for concurrent use; tinyLFU guards
// it with its mutex.
type sketch struct {
	table      []uint64 // sketchRows rows of width counters, 16 per word
	width      uint64   // counters per row, a power of two
	additions  uint64   // increments since the last halving
	sampleSize uint64   // additions that trigger a halving
}

const (
	sketchRows = 4
	// minSketchWidth keeps tiny caches from degenerating into a handful of
	// shared counters.
	minSketchWidth = 1 << 10
	// maxSketchWidth bounds memory at 4 rows × 2^22 × 4 bits = 8 MiB, enough
	// to track a node holding millions of bodies.
	maxSketchWidth = 1 << 22
	// sampleFactor follows the TinyLFU paper and Caffeine: age after ten
	// increments per counter, long enough to see which keys recur and short
	// enough that yesterday's hot set fades.
	sampleFactor = 10
	counterMax   = 15
	// oneMask selects the low bit of each of the 16 nibbles in a word.
	oneMask = 0x1111111111111111
	// resetMask clears the bit that shifts into a neighbouring nibble when
	// a whole word is halved at once.
	resetMask = 0x7777777777777777
)

func (s *sketch) init(width uint64) {
	s.width = width
	s.table = make([]uint64, sketchRows*width/16)
	s.additions = 0
	s.sampleSize = sampleFactor * width
}

// ensure grows the sketch so it has at least one counter per row for each
// of n held bodies. Growing discards the history, as in Caffeine, because
// counts cannot be rehashed; it only happens while the node is filling up.
func (s *sketch) ensure(n int) {
	if n <= 0 || uint64(n) <= s.width || s.width >= maxSketchWidth {
		return
	}
	w := uint64(1) << bits.Len64(uint64(n)-1)
	s.init(min(max(w, minSketchWidth), maxSketchWidth))
}

// hashID spreads a ULID over 64 bits. ULIDs start with a millisecond
// timestamp, so ids minted together share their high bytes; mixing both
// halves keeps them from landing in the same counters. The hash is
// deliberately unseeded so simulations are reproducible; keys are minted by
// objstore, not chosen by clients, so collision flooding is not a concern.
func hashID(id ulid.ULID) uint64 {
	hi := binary.BigEndian.Uint64(id[0:8])
	lo := binary.BigEndian.Uint64(id[8:16])
	return mix64(hi ^ mix64(lo))
}

// mix64 is the SplitMix64 finalizer: a cheap bijection with good avalanche.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// slots returns, for each row, the word index and bit shift of h's counter.
// Rows take different 32-bit slices of two hashes, so they collide
// independently (width is at most 2^22, so 32 bits is plenty).
func (s *sketch) slots(h uint64) (words [sketchRows]uint64, shifts [sketchRows]uint64) {
	h2 := mix64(h ^ 0x9e3779b97f4a7c15)
	idx := [sketchRows]uint64{h, h >> 32, h2, h2 >> 32}
	mask := s.width - 1
	rowWords := s.width / 16
	for r := range idx {
		i := idx[r] & mask
		words[r] = uint64(r)*rowWords + i>>4
		shifts[r] = (i & 15) << 2
	}
	return words, shifts
}

// increment counts one access of the key hashed to h.
func (s *sketch) increment(h uint64) {
	words, shifts := s.slots(h)
	added := false
	for r := range words {
		if (s.table[words[r]]>>shifts[r])&counterMax < counterMax {
			s.table[words[r]] += 1 << shifts[r]
			added = true
		}
	}
	if added {
		s.additions++
		if s.additions >= s.sampleSize {
			s.age()
		}
	}
}

// estimate returns the approximate access count of the key hashed to h,
// 0..15. Count-min: it may over-count (collisions) but, between halvings,
// never under-counts.
func (s *sketch) estimate(h uint64) int {
	words, shifts := s.slots(h)
	est := uint64(counterMax)
	for r := range words {
		est = min(est, (s.table[words[r]]>>shifts[r])&counterMax)
	}
	return int(est)
}

// age halves every counter so that past popularity decays and a formerly
// hot key cannot hold its place forever.
func (s *sketch) age() {
	odd := 0
	for i, w := range s.table {
		odd += bits.OnesCount64(w & oneMask)
		s.table[i] = (w >> 1) & resetMask
	}
	// Each addition bumped up to one counter per row and halving truncates
	// odd counters, so subtract the lost halves before halving the tally
	// (the same correction Caffeine uses).
	lost := uint64(odd / sketchRows)
	if lost > s.additions {
		lost = s.additions
	}
	s.additions = (s.additions - lost) / 2
}
