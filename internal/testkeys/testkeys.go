// Package testkeys makes encryption keyrings for tests of bodies sealed
// at rest.
package testkeys

import (
	"bytes"
	"testing"

	"github.com/objstore/objstore/storage/seal"
)

// Keyring returns a keyring holding a key for each of ids, the first
// primary. Key n is 32 bytes of n, so keyrings made apart share keys by ID.
func Keyring(t testing.TB, ids ...uint32) *seal.Keyring {
	t.Helper()
	keys := map[uint32][]byte{}
	for _, id := range ids {
		keys[id] = bytes.Repeat([]byte{byte(id)}, 32)
	}
	kr, err := seal.NewKeyring(ids[0], keys)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}
