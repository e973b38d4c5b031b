package seal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Keyring holds 32-byte master keys by ID. The primary key seals new
// bodies; every key opens the bodies sealed with it. A Keyring is immutable
// and safe for concurrent use. It prints (String, and fmt with any verb)
// its key IDs only, so logging a Keyring does not leak key material.
type Keyring struct {
	primary uint32
	keys    map[uint32][]byte
	clear   bool // Unencrypted: checksummed bodies, no keys
}

// NewKeyring returns a keyring holding a copy of keys, sealing with the key
// of ID primary. Every key must be exactly 32 bytes, not all zeros, and
// primary must be one of them. Error messages name key IDs, never key
// bytes.
func NewKeyring(primary uint32, keys map[uint32][]byte) (*Keyring, error) {
	kr := &Keyring{primary: primary, keys: make(map[uint32][]byte, len(keys))}
	for id, k := range keys {
		if err := checkKey(k); err != nil {
			return nil, fmt.Errorf("seal: key %d: %w", id, err)
		}
		kr.keys[id] = bytes.Clone(k)
	}
	if _, ok := kr.keys[primary]; !ok {
		return nil, fmt.Errorf("seal: primary key %d is not in the keyring", primary)
	}
	return kr, nil
}

func checkKey(k []byte) error {
	if len(k) != keySize {
		return fmt.Errorf("key is %d bytes, want %d", len(k), keySize)
	}
	if !slices.ContainsFunc(k, func(b byte) bool { return b != 0 }) {
		return errors.New("key is all zeros")
	}
	return nil
}

// ParseKeyFile parses a key file and returns its keyring.
//
// The file is UTF-8 text. Each non-blank line holds one key as
//
//	<id>:<key>
//
// where <id> is a decimal number in 0..4294967295, recorded in the header
// of every body the key seals, and <key> is 32 random bytes in standard,
// padded base64 (44 characters), such as the output of
// `head -c 32 /dev/urandom | base64`. Spaces around either part are
// ignored. A '#' starts a comment running to the end of its line. The FIRST
// key in the file is the primary: it seals new bodies; the others only open
// bodies sealed earlier. IDs must be unique, keys must be distinct and not
// all zeros, and the file must hold at least one key.
//
// To roll a key in across a cluster: (1) append the new key, with a fresh
// ID, to every node's file, so that every node can open what any node will
// seal with it; (2) once all nodes have it, move it to the top of every
// file; (3) reseal the bodies whose key ID (Reader.KeyID, Inspect) is not
// the primary; (4) only then remove the old key.
//
// Errors name the offending line and key ID but never include key
// material, nor any other text of the file, since a misplaced key could
// appear anywhere in it.
func ParseKeyFile(data []byte) (*Keyring, error) {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	keys := make(map[uint32][]byte)
	lineOf := make(map[uint32]int)
	var primary uint32
	for i, line := range strings.Split(string(data), "\n") {
		lineNo := i + 1
		if c := strings.IndexByte(line, '#'); c >= 0 {
			line = line[:c]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		idText, keyText, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("seal: key file line %d: want <id>:<base64 key>", lineNo)
		}
		id64, err := strconv.ParseUint(strings.TrimSpace(idText), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("seal: key file line %d: the key ID is not a decimal number below 2^32", lineNo)
		}
		id := uint32(id64)
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keyText))
		if err != nil {
			// The decoder's error is not wrapped: it is safe today, but
			// nothing promises it will stay free of input bytes.
			return nil, fmt.Errorf("seal: key file line %d: key %d is not valid standard base64", lineNo, id)
		}
		if err := checkKey(key); err != nil {
			return nil, fmt.Errorf("seal: key file line %d: key %d: %w", lineNo, id, err)
		}
		if prev, dup := lineOf[id]; dup {
			return nil, fmt.Errorf("seal: key file line %d: key ID %d is already defined on line %d", lineNo, id, prev)
		}
		for otherID, other := range keys {
			if bytes.Equal(other, key) {
				return nil, fmt.Errorf("seal: key file line %d: key %d has the same bytes as key %d (line %d)", lineNo, id, otherID, lineOf[otherID])
			}
		}
		if len(keys) == 0 {
			primary = id
		}
		keys[id] = key
		lineOf[id] = lineNo
	}
	if len(keys) == 0 {
		return nil, errors.New("seal: key file holds no key")
	}
	return &Keyring{primary: primary, keys: keys}, nil
}

// Primary returns the ID of the key that seals new bodies.
func (k Keyring) Primary() uint32 { return k.primary }

// Has reports whether the keyring holds the key of ID id.
func (k Keyring) Has(id uint32) bool {
	_, ok := k.keys[id]
	return ok
}

// IDs returns the IDs of the keyring's keys in increasing order.
func (k Keyring) IDs() []uint32 {
	ids := make([]uint32, 0, len(k.keys))
	for id := range k.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// String describes the keyring by its key IDs only.
func (k Keyring) String() string {
	if k.clear {
		return "seal.Unencrypted"
	}
	return fmt.Sprintf("seal.Keyring{primary: %d, ids: %v}", k.primary, k.IDs())
}

// Format prints String for every verb, so that no fmt verb (%d, %x, %#v
// included) prints key bytes, whether given a Keyring or a pointer to one.
func (k Keyring) Format(f fmt.State, verb rune) { io.WriteString(f, k.String()) }
