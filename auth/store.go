package auth

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Store holds the credentials loaded from one file. Lookup and
// Authenticate read an immutable snapshot through an atomic pointer, so
// they never block and are safe to call while Reload replaces the set.
type Store struct {
	path string
	now  func() time.Time

	reloadMu sync.Mutex // serializes Reload so the newest read always wins
	cur      atomic.Pointer[snapshot]
}

// snapshot is one loaded version of the file; it is never modified after
// it is published.
type snapshot struct {
	creds    map[string]Credential
	warnings []string
}

// Option configures a Store in NewStore.
type Option func(*Store)

// WithClock makes the Store read the current time from now instead of
// time.Now; it exists for tests of the clock-skew and expiry checks.
func WithClock(now func() time.Time) Option {
	return func(s *Store) { s.now = now }
}

// NewStore loads the credentials file at path (format in the package
// documentation). It fails if the file cannot be read or any line is
// invalid; a bad line is reported as a *ParseError. Non-fatal findings,
// such as a file readable by other users, are available from Warnings.
func NewStore(path string, opts ...Option) (*Store, error) {
	s := &Store{path: path, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	snap, err := load(path)
	if err != nil {
		return nil, err
	}
	s.cur.Store(snap)
	return s, nil
}

// Reload re-reads the file. On success the new set replaces the old one
// atomically; on error the old set stays in force and the error is
// returned. It is meant to be called on SIGHUP and is safe to call
// concurrently with everything else.
func (s *Store) Reload() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	snap, err := load(s.path)
	if err != nil {
		return err
	}
	s.cur.Store(snap)
	return nil
}

// Lookup returns the credential with the given access key ID.
func (s *Store) Lookup(accessKeyID string) (Credential, bool) {
	c, ok := s.cur.Load().creds[accessKeyID]
	return c, ok
}

// Len returns the number of access keys in force.
func (s *Store) Len() int { return len(s.cur.Load().creds) }

// Path returns the credentials file's path as given to NewStore.
func (s *Store) Path() string { return s.path }

// Warnings returns the non-fatal problems found when the set in force was
// loaded (for example a file readable by group or others, or a file with
// no keys), one sentence each, for the caller to log. Secrets never
// appear in them.
func (s *Store) Warnings() []string {
	return append([]string(nil), s.cur.Load().warnings...)
}

// load reads and parses the file at path.
func load(path string) (*snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: credentials file: %w", err)
	}
	defer f.Close()
	var warnings []string
	// Stat the open file, not the path, so the mode checked is the one of
	// the content read.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("auth: credentials file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("auth: credentials file %s: not a regular file", path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		warnings = append(warnings, fmt.Sprintf(
			"credentials file %s has mode %#o, so other users can access it; run chmod 600 on it",
			path, fi.Mode().Perm()))
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("auth: credentials file: read %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("auth: credentials file %s: larger than %d bytes", path, maxFileSize)
	}
	creds, err := parseCredentials(path, data)
	if err != nil {
		return nil, fmt.Errorf("auth: credentials file: %w", err)
	}
	if len(creds) == 0 {
		warnings = append(warnings, fmt.Sprintf("credentials file %s defines no access keys, so every authenticated request will be refused", path))
	}
	return &snapshot{creds: creds, warnings: warnings}, nil
}
