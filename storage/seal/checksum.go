package seal

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// Unencrypted is the keyring of bodies kept in the clear. Writers given it
// write the same segmented format with a CRC-32C checksum in each
// segment's tag in place of encryption (see "Checksummed bodies" in the
// package documentation), so that reads still refuse damaged bytes:
// a flipped bit, a truncated, extended or reordered file, or another
// object's file all fail with ErrCorrupt, as for a sealed body. It guards
// against accident, not against an attacker, who can recompute a CRC.
//
// Open and OpenPartial given Unencrypted accept checksummed files only,
// and given any other keyring accept encrypted files only, so a file
// cannot be passed off as the other kind. Unencrypted holds no key: it
// seals no values (SealValue), and Primary reports 0.
var Unencrypted = &Keyring{clear: true}

// checksumMagic marks a checksummed file; the rest of its header is laid
// out as a sealed file's, with key ID 0.
const checksumMagic = "OBJSUMS"

// sumsLabel starts the bytes every segment checksum covers.
const sumsLabel = "objstore sums v1"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errChecksum is what crcAEAD.Open returns; readers report it as
// ErrCorrupt, like a failed authentication.
var errChecksum = errors.New("seal: segment checksum mismatch")

// crcAEAD is the cipher.AEAD of checksummed files: Seal copies the
// plaintext and appends a tag holding
//
//	CRC-32C(label || header || binding || nonce || plaintext)
//
// in its first 4 bytes (big-endian) and zeros in the other 12; Open checks
// both. Since the nonce holds the segment index and the final flag, and
// the header its salt, the segment readers' checks for truncation,
// reordering and splicing carry over from sealed files.
type crcAEAD struct {
	seed uint32 // CRC-32C of label, header and binding
}

func newCRC(h *header, binding []byte) crcAEAD {
	c := crc32.Update(0, castagnoli, []byte(sumsLabel))
	c = crc32.Update(c, castagnoli, h.raw[:])
	return crcAEAD{seed: crc32.Update(c, castagnoli, binding)}
}

func (a crcAEAD) NonceSize() int { return nonceSize }
func (a crcAEAD) Overhead() int  { return TagSize }

func (a crcAEAD) sum(nonce, plain []byte) uint32 {
	return crc32.Update(crc32.Update(a.seed, castagnoli, nonce), castagnoli, plain)
}

// Seal appends plaintext and its tag to dst. As with cipher.AEAD,
// plaintext and dst may overlap exactly (sealing in place, where the copy
// is skipped) or not at all.
func (a crcAEAD) Seal(dst, nonce, plaintext, _ []byte) []byte {
	c := a.sum(nonce, plaintext)
	ret, out := grow(dst, len(plaintext)+TagSize)
	if !sameStart(out, plaintext) {
		copy(out, plaintext)
	}
	tag := out[len(plaintext):]
	clear(tag)
	binary.BigEndian.PutUint32(tag, c)
	return ret
}

// Open checks ciphertext's tag and appends its plaintext to dst, which may
// overlap it exactly or not at all.
func (a crcAEAD) Open(dst, nonce, ciphertext, _ []byte) ([]byte, error) {
	if len(ciphertext) < TagSize {
		return nil, errChecksum
	}
	plain, tag := ciphertext[:len(ciphertext)-TagSize], ciphertext[len(ciphertext)-TagSize:]
	if binary.BigEndian.Uint32(tag) != a.sum(nonce, plain) || !allZero(tag[4:]) {
		return nil, errChecksum
	}
	ret, out := grow(dst, len(plain))
	if !sameStart(out, plain) {
		copy(out, plain)
	}
	return ret, nil
}

// grow extends dst by n bytes, returning the whole slice and the new
// part, reusing dst's capacity when it suffices.
func grow(dst []byte, n int) (whole, tail []byte) {
	total := len(dst) + n
	if cap(dst) >= total {
		whole = dst[:total]
	} else {
		whole = make([]byte, total)
		copy(whole, dst)
	}
	return whole, whole[len(dst):]
}

func sameStart(a, b []byte) bool { return len(a) > 0 && len(b) > 0 && &a[0] == &b[0] }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
