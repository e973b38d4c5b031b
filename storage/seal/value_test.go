package seal

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealValue(t *testing.T) {
	kr1, _ := NewKeyring(1, map[uint32][]byte{1: bytes.Repeat([]byte{1}, 32)})
	kr21, _ := NewKeyring(2, map[uint32][]byte{1: bytes.Repeat([]byte{1}, 32), 2: bytes.Repeat([]byte{2}, 32)})
	sealed, err := kr1.SealValue([]byte("id-1"), []byte("report.pdf"))
	if err != nil || bytes.Contains(sealed, []byte("report")) {
		t.Fatalf("seal: %v %q", err, sealed)
	}
	if got, err := kr21.OpenValue([]byte("id-1"), sealed); err != nil || string(got) != "report.pdf" {
		t.Fatalf("open with a keyring that still holds key 1: %q %v", got, err)
	}
	if _, err := kr21.OpenValue([]byte("id-2"), sealed); !errors.Is(err, ErrCorrupt) {
		t.Errorf("open under another binding: %v", err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := kr1.OpenValue([]byte("id-1"), sealed); !errors.Is(err, ErrCorrupt) {
		t.Errorf("altered value: %v", err)
	}
	again, _ := kr21.SealValue([]byte("id-1"), []byte("x"))
	if id, _ := ValueKeyID(again); id != 2 {
		t.Errorf("sealed with key %d, want the primary 2", id)
	}
	if _, err := kr1.OpenValue([]byte("id-1"), again); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("a key the keyring lacks: %v", err)
	}
	if _, err := kr1.OpenValue(nil, []byte{1, 2}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short value: %v", err)
	}
}

// A stored value comes off a disk that may be damaged: garbage never opens
// and never panics.
func FuzzOpenValue(f *testing.F) {
	kr, _ := NewKeyring(1, map[uint32][]byte{1: bytes.Repeat([]byte{1}, 32)})
	good, _ := kr.SealValue([]byte("b"), []byte("name"))
	f.Add(good)
	f.Add([]byte{1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		// Only a value this key sealed opens, and the only one sealed
		// here is "name" (the seed, in whichever process made it).
		if plain, err := kr.OpenValue([]byte("b"), b); err == nil && string(plain) != "name" {
			t.Fatalf("garbage opened to %q", plain)
		}
	})
}
