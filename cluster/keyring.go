package cluster

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/memberlist"
)

// A cluster secret is the one shared key of a cluster without a PKI. From
// each secret the keyring derives, with HKDF-SHA256 and distinct labels:
//
//   - the gossip key (AES-256-GCM, memberlist's keyring),
//   - the key of the HMAC on every private request and answer,
//   - a key that wraps another secret sent to peers during a rotation,
//   - a short public fingerprint that names the secret in requests and logs.
//
// A keyring holds several secrets so that a new one can be rolled in
// without downtime, as Consul's gossip keyring does: install the new secret
// on every node (all keep accepting the old), make it primary everywhere
// (new messages use it, old ones still verify), then remove the old one.
const (
	// MinSecretBytes is the shortest cluster secret accepted.
	MinSecretBytes = 32
	// maxSecretBytes bounds a secret read from a file or a peer.
	maxSecretBytes = 1024
	// maxKeys bounds the secrets one keyring holds.
	maxKeys = 8

	labelGossip = "objstore cluster gossip key v1"
	labelHMAC   = "objstore cluster request hmac v1"
	labelWrap   = "objstore cluster key wrap v1"
	labelID     = "objstore cluster key id v1"
)

// Errors of keyring operations, matched with errors.Is.
var (
	// ErrKeyring is returned, wrapped, for a keyring operation that cannot
	// be carried out (an unknown key, removing the primary, a bad secret).
	ErrKeyring = errors.New("cluster: keyring")
)

// clusterKey is one secret and what is derived from it.
type clusterKey struct {
	secret []byte
	id     string // hex fingerprint, public
	gossip []byte // 32 bytes
	mac    []byte // 32 bytes
	wrap   []byte // 32 bytes
}

func deriveKey(secret []byte) (clusterKey, error) {
	if len(secret) < MinSecretBytes || len(secret) > maxSecretBytes {
		return clusterKey{}, fmt.Errorf("%w: a cluster secret must be %d to %d bytes, not %d", ErrKeyring, MinSecretBytes, maxSecretBytes, len(secret))
	}
	k := clusterKey{secret: slices.Clone(secret)}
	derive := func(label string) []byte {
		b, err := hkdf.Key(sha256.New, secret, nil, label, 32)
		if err != nil {
			panic(err) // only for lengths HKDF-SHA256 cannot produce
		}
		return b
	}
	k.gossip, k.mac, k.wrap = derive(labelGossip), derive(labelHMAC), derive(labelWrap)
	k.id = hex.EncodeToString(derive(labelID)[:8])
	return k, nil
}

// Keyring is a cluster's set of secrets, one of them primary. It is safe
// for concurrent use; changes are persisted to its file (when it has one)
// before they take effect, and reach memberlist's own keyring at once.
type Keyring struct {
	path string // where it is persisted; empty: not persisted

	mu      sync.RWMutex // guards keys, primary and gossip's key order
	keys    []clusterKey
	primary string
	gossip  *memberlist.Keyring
}

// NewKeyring returns a keyring holding secret as its primary. A secret of
// the wrong size is an error matching ErrKeyring.
func NewKeyring(secret []byte) (*Keyring, error) {
	k, err := deriveKey(secret)
	if err != nil {
		return nil, err
	}
	kr := &Keyring{keys: []clusterKey{k}, primary: k.id}
	if kr.gossip, err = memberlist.NewKeyring(nil, k.gossip); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyring, err)
	}
	return kr, nil
}

// keyringFile is the persisted form: the secrets in base64, primary first.
type keyringFile struct {
	Format  int      `json:"format"`
	Secrets []string `json:"secrets"`
}

// OpenKeyring returns the keyring persisted at path if there is one, and
// otherwise a new keyring holding secret, which it persists there. Once a
// node has a persisted keyring, its rotations outlive restarts and the
// configured secret only seeds new nodes, as with Consul's keyring file;
// fromFile reports which happened.
func OpenKeyring(path string, secret []byte) (kr *Keyring, fromFile bool, err error) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if secret == nil {
			return nil, false, fmt.Errorf("%w: no keyring at %s and no cluster secret", ErrKeyring, path)
		}
		if kr, err = NewKeyring(secret); err != nil {
			return nil, false, err
		}
		kr.path = path
		return kr, false, kr.save()
	case err != nil:
		return nil, false, fmt.Errorf("cluster: read keyring: %w", err)
	}
	if kr, err = parseKeyring(b); err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, err)
	}
	kr.path = path
	return kr, true, nil
}

// parseKeyring reads a persisted keyring, primary first.
func parseKeyring(b []byte) (*Keyring, error) {
	var f keyringFile
	if err := json.Unmarshal(b, &f); err != nil || f.Format != 1 || len(f.Secrets) == 0 || len(f.Secrets) > maxKeys {
		return nil, fmt.Errorf("%w: the keyring file is damaged; restore it or remove it to start from the configured secret", ErrKeyring)
	}
	var kr *Keyring
	for i, s := range f.Secrets {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%w: secret %d is not base64", ErrKeyring, i+1)
		}
		if i == 0 {
			if kr, err = NewKeyring(raw); err != nil {
				return nil, err
			}
			continue
		}
		if err := kr.add(raw, false); err != nil {
			return nil, err
		}
	}
	return kr, nil
}

// save writes the keyring to its file atomically, readable by its owner
// only. Called with mu held (or before the keyring is shared).
func (kr *Keyring) save() error { return kr.saveAs(kr.keys, kr.primary) }

// saveAs writes keys with primary to the keyring's file: every change is
// on disk before it takes effect, so a change that cannot be saved is not
// made, and a restart never goes back on one that was.
func (kr *Keyring) saveAs(keys []clusterKey, primary string) error {
	if kr.path == "" {
		return nil
	}
	f := keyringFile{Format: 1}
	for _, k := range orderedOf(keys, primary) {
		f.Secrets = append(f.Secrets, base64.StdEncoding.EncodeToString(k.secret))
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	tmp := kr.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("cluster: write keyring: %w", err)
	}
	if err := syncFile(tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cluster: write keyring: %w", err)
	}
	if err := os.Rename(tmp, kr.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cluster: write keyring: %w", err)
	}
	return syncFile(filepath.Dir(kr.path))
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// ordered returns the keys primary first. Called with mu held.
func (kr *Keyring) ordered() []clusterKey { return orderedOf(kr.keys, kr.primary) }

func orderedOf(keys []clusterKey, primary string) []clusterKey {
	out := make([]clusterKey, 0, len(keys))
	for _, k := range keys {
		if k.id == primary {
			out = append([]clusterKey{k}, out...)
		} else {
			out = append(out, k)
		}
	}
	return out
}

// add adds secret to the keyring, after saving the keyring with it when
// persist is set. Called with mu held (or before the keyring is shared).
func (kr *Keyring) add(secret []byte, persist bool) error {
	k, err := deriveKey(secret)
	if err != nil {
		return err
	}
	for _, have := range kr.keys {
		if have.id == k.id {
			return nil
		}
	}
	if len(kr.keys) >= maxKeys {
		return fmt.Errorf("%w: the keyring already holds %d keys; remove one first", ErrKeyring, maxKeys)
	}
	keys := append(slices.Clone(kr.keys), k)
	if persist {
		if err := kr.saveAs(keys, kr.primary); err != nil {
			return err
		}
	}
	if err := kr.gossip.AddKey(k.gossip); err != nil {
		return fmt.Errorf("%w: %w", ErrKeyring, err)
	}
	kr.keys = keys
	return nil
}

// KeyInfo describes one key of a keyring, by its public fingerprint.
type KeyInfo struct {
	ID      string `json:"id"`
	Primary bool   `json:"primary"`
}

// List returns the keys' fingerprints, primary first.
func (kr *Keyring) List() []KeyInfo {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	var out []KeyInfo
	for _, k := range kr.ordered() {
		out = append(out, KeyInfo{ID: k.id, Primary: k.id == kr.primary})
	}
	return out
}

// Fingerprint returns the public fingerprint of secret, the ID List and
// the keyring operations use for it.
func Fingerprint(secret []byte) (string, error) {
	k, err := deriveKey(secret)
	return k.id, err
}

// Install adds secret to the keyring: messages signed or encrypted with it
// are accepted from now on; the primary does not change. Installing a key
// already held does nothing.
func (kr *Keyring) Install(secret []byte) error {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	return kr.add(secret, true)
}

// Use makes the installed key with fingerprint id the primary: new
// requests are signed and gossip is encrypted with it.
func (kr *Keyring) Use(id string) error {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if err := kr.checkUse(id); err != nil {
		return err
	}
	k, _ := kr.find(id)
	if err := kr.saveAs(kr.keys, id); err != nil {
		return err
	}
	if err := kr.gossip.UseKey(k.gossip); err != nil {
		return fmt.Errorf("%w: %w", ErrKeyring, err)
	}
	kr.primary = id
	return nil
}

// Remove drops the key with fingerprint id. The primary key cannot be
// removed; removing a key not held does nothing.
func (kr *Keyring) Remove(id string) error {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if err := kr.checkRemove(id); err != nil {
		return err
	}
	k, ok := kr.find(id)
	if !ok {
		return nil
	}
	keys := slices.DeleteFunc(slices.Clone(kr.keys), func(c clusterKey) bool { return c.id == id })
	if err := kr.saveAs(keys, kr.primary); err != nil {
		return err
	}
	if err := kr.gossip.RemoveKey(k.gossip); err != nil {
		return fmt.Errorf("%w: %w", ErrKeyring, err)
	}
	kr.keys = keys
	return nil
}

// CanUse and CanRemove report, without changing anything, whether Use and
// Remove of the key with fingerprint id would be refused, so a change can
// be checked here before it is carried to the peers.
func (kr *Keyring) CanUse(id string) error {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return kr.checkUse(id)
}

// CanRemove: see CanUse.
func (kr *Keyring) CanRemove(id string) error {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return kr.checkRemove(id)
}

// checkUse and checkRemove are called with mu held.
func (kr *Keyring) checkUse(id string) error {
	if _, ok := kr.find(id); !ok {
		return fmt.Errorf("%w: key %s is not installed; install it first", ErrKeyring, id)
	}
	return nil
}

func (kr *Keyring) checkRemove(id string) error {
	if id == kr.primary {
		return fmt.Errorf("%w: key %s is the primary; make another key primary first", ErrKeyring, id)
	}
	return nil
}

// find returns the key with fingerprint id. Called with mu held.
func (kr *Keyring) find(id string) (clusterKey, bool) {
	for _, k := range kr.keys {
		if k.id == id {
			return k, true
		}
	}
	return clusterKey{}, false
}

// Gossip returns memberlist's keyring, which follows this one.
func (kr *Keyring) Gossip() *memberlist.Keyring { return kr.gossip }

// primaryKey returns the primary key. It takes the read lock.
func (kr *Keyring) primaryKey() clusterKey {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	k, _ := kr.find(kr.primary)
	return k
}

// key returns the key with fingerprint id. It takes the read lock.
func (kr *Keyring) key(id string) (clusterKey, bool) {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return kr.find(id)
}

// Wrap encrypts secret for a peer under the primary key, so a rotation can
// send a new secret over a private API that is not otherwise encrypted.
// The result names the wrapping key.
func (kr *Keyring) Wrap(secret []byte) (string, error) {
	k := kr.primaryKey()
	aead, err := newGCM(k.wrap)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	sealed := aead.Seal(nonce, nonce, secret, []byte(k.id))
	return k.id + ":" + base64.StdEncoding.EncodeToString(sealed), nil
}

// Unwrap decrypts what a peer's Wrap made, with whichever held key wrapped
// it. It fails with ErrKeyring if no held key did, or the text was altered.
func (kr *Keyring) Unwrap(wrapped string) ([]byte, error) {
	id, b64, ok := strings.Cut(wrapped, ":")
	if !ok {
		return nil, fmt.Errorf("%w: malformed wrapped key", ErrKeyring)
	}
	k, ok := kr.key(id)
	if !ok {
		return nil, fmt.Errorf("%w: wrapped with key %s, which this node does not hold", ErrKeyring, id)
	}
	sealed, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed wrapped key", ErrKeyring)
	}
	aead, err := newGCM(k.wrap)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() || len(sealed) > maxSecretBytes+64 {
		return nil, fmt.Errorf("%w: malformed wrapped key", ErrKeyring)
	}
	secret, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(k.id))
	if err != nil {
		return nil, fmt.Errorf("%w: wrapped key does not verify", ErrKeyring)
	}
	return secret, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sign returns the HMAC-SHA256 of the parts under k, each part
// length-prefixed so no two sequences of parts sign alike.
func (k clusterKey) sign(parts ...string) []byte {
	m := hmac.New(sha256.New, k.mac)
	var n [8]byte
	for _, p := range parts {
		l := len(p)
		for i := range n {
			n[i] = byte(l >> (8 * (7 - i)))
		}
		m.Write(n[:])
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}
