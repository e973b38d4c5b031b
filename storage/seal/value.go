package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Small values (the names and user metadata of objects in the journal)
// are sealed whole with AES-256-GCM:
//
//	version(1)=1  keyID(4)  nonce(12)  ciphertext  tag(16)
//
// under HKDF-SHA256(master key, info "objstore seal value v1"), with the
// caller's binding (the object's ID) as additional data, so a value moved
// to another object does not open. The nonce is random: values are few
// and short, and a 96-bit random nonce under one key is safe for far more
// values than a journal holds.

const (
	valueVersion  = 1
	valueLabel    = "objstore seal value v1"
	valueOverhead = 1 + 4 + nonceSize + TagSize
)

func (k *Keyring) valueAEAD(id uint32) (cipher.AEAD, error) {
	if k.clear {
		return nil, errors.New("seal: the Unencrypted keyring seals no values")
	}
	master, ok := k.keys[id]
	if !ok {
		return nil, fmt.Errorf("%w: key %d", ErrUnknownKey, id)
	}
	key, err := hkdf.Key(sha256.New, master, nil, valueLabel, keySize)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// SealValue encrypts plain, bound to binding, under the primary key.
func (k *Keyring) SealValue(binding, plain []byte) ([]byte, error) {
	aead, err := k.valueAEAD(k.primary)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 5+nonceSize, valueOverhead+len(plain))
	out[0] = valueVersion
	binary.BigEndian.PutUint32(out[1:], k.primary)
	if _, err := rand.Read(out[5:]); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[5:5+nonceSize], plain, binding), nil
}

// OpenValue decrypts what SealValue made with any key of the keyring. A
// value that does not authenticate (altered, or sealed for another
// binding) fails with ErrCorrupt; one under a key the keyring lacks, with
// ErrUnknownKey.
func (k *Keyring) OpenValue(binding, sealed []byte) ([]byte, error) {
	id, err := ValueKeyID(sealed)
	if err != nil {
		return nil, err
	}
	aead, err := k.valueAEAD(id)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, sealed[5:5+nonceSize], sealed[5+nonceSize:], binding)
	if err != nil {
		return nil, fmt.Errorf("%w: sealed value does not authenticate", ErrCorrupt)
	}
	return plain, nil
}

// ValueKeyID returns the key a value was sealed with.
func ValueKeyID(sealed []byte) (uint32, error) {
	if len(sealed) < valueOverhead {
		return 0, fmt.Errorf("%w: sealed value of %d bytes", ErrCorrupt, len(sealed))
	}
	if sealed[0] != valueVersion {
		return 0, fmt.Errorf("%w: sealed value version %d", ErrUnsupportedVersion, sealed[0])
	}
	return binary.BigEndian.Uint32(sealed[1:]), nil
}

// ValueCurrent reports whether a sealed value is under the primary key, so
// a caller can tell which values to seal again after a key is rolled in.
func (k *Keyring) ValueCurrent(sealed []byte) bool {
	id, err := ValueKeyID(sealed)
	return err == nil && id == k.primary
}
