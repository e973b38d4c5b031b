package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestParseScope(t *testing.T) {
	for name, want := range map[string]Scope{"read": ScopeRead, "write": ScopeWrite, "admin": ScopeAdmin} {
		got, err := ParseScope(name)
		if err != nil || got != want || got.String() != name {
			t.Errorf("ParseScope(%q) = %v, %v", name, got, err)
		}
	}
	for _, bad := range []string{"", "Read", "READ", "rw", "read,write", " read"} {
		if _, err := ParseScope(bad); err == nil {
			t.Errorf("ParseScope(%q) succeeded", bad)
		}
	}
}

func TestScopesHas(t *testing.T) {
	for _, tc := range []struct {
		set                Scopes
		read, write, admin bool
		str                string
	}{
		{0, false, false, false, ""},
		{Scopes(ScopeRead), true, false, false, "read"},
		{Scopes(ScopeWrite), false, true, false, "write"}, // write does not imply read
		{Scopes(ScopeRead | ScopeWrite), true, true, false, "read,write"},
		{Scopes(ScopeAdmin), true, true, true, "admin"}, // admin implies all
	} {
		if tc.set.Has(ScopeRead) != tc.read || tc.set.Has(ScopeWrite) != tc.write || tc.set.Has(ScopeAdmin) != tc.admin {
			t.Errorf("%v: Has(read, write, admin) = %v %v %v", tc.set, tc.set.Has(ScopeRead), tc.set.Has(ScopeWrite), tc.set.Has(ScopeAdmin))
		}
		if tc.set.String() != tc.str {
			t.Errorf("String() = %q, want %q", tc.set.String(), tc.str)
		}
		if tc.set.Has(0) || tc.set.Has(Scope(0x80)) {
			t.Errorf("%v grants an undefined scope", tc.set)
		}
	}
}

func TestParseCredentials(t *testing.T) {
	s := newTestStore(t)
	if s.Len() != 3 {
		t.Fatalf("Len = %d, want 3", s.Len())
	}
	for id, want := range map[string]Scopes{
		testID: Scopes(ScopeRead | ScopeWrite), readerID: Scopes(ScopeRead), adminID: Scopes(ScopeAdmin),
	} {
		c, ok := s.Lookup(id)
		if !ok || c.ID != id || c.Scopes != want {
			t.Errorf("Lookup(%q) = %v, %v", id, c, ok)
		}
	}
	if c, _ := s.Lookup(readerID); c.secret != readerSecret {
		t.Error("secret not parsed")
	}
	if _, ok := s.Lookup("nope"); ok {
		t.Error("Lookup of unknown key succeeded")
	}
	if w := s.Warnings(); len(w) != 0 {
		t.Errorf("warnings %q", w)
	}

	// CRLF line ends, a BOM, leading blanks and repeated scopes are fine.
	creds, err := parseCredentials("f", []byte("\xef\xbb\xbf  # c\r\n\r\n\tabc 12345678 write,read,write\r\n"))
	if err != nil || len(creds) != 1 || creds["abc"].Scopes != Scopes(ScopeRead|ScopeWrite) || creds["abc"].secret != "12345678" {
		t.Errorf("CRLF file: %v %v", creds, err)
	}
	// Secrets may hold any printable ASCII, '#' included.
	creds, err = parseCredentials("f", []byte("key #!\"$%&'()*+,-./:;<=>?@[\\]^_`{|}~ admin\n"))
	if err != nil || creds["key"].secret != "#!\"$%&'()*+,-./:;<=>?@[\\]^_`{|}~" {
		t.Errorf("punctuation secret: %v %v", creds, err)
	}
}

func TestParseCredentialsErrors(t *testing.T) {
	const secret = "Sup3rS3cretValue"
	long := strings.Repeat("k", MaxAccessKeyIDLen+1)
	for _, tc := range []struct {
		name, line, reason string
	}{
		{"TooFewFields", "key1 " + secret, reasonFields},
		{"OneField", secret, reasonFields},
		{"TrailingText", "key1 " + secret + " read extra", reasonTrailing},
		{"SecretAsID", secret + "/x key1 read", reasonID},
		{"ShortID", "ab " + secret + " read", reasonID},
		{"LongID", long + " " + secret + " read", reasonID},
		{"IDWithSlash", "a/b " + secret + " read", reasonID},
		{"ShortSecret", "key1 short read", reasonSecret},
		{"LongSecret", "key1 " + strings.Repeat("s", MaxSecretLen+1) + " read", reasonSecret},
		{"NonASCIISecret", "key1 " + secret + "é read", reasonSecret},
		{"ControlSecret", "key1 " + secret + "\x01 read", reasonSecret},
		{"UnknownScope", "key1 " + secret + " read,delete", reasonScope},
		{"UpperScope", "key1 " + secret + " READ", reasonScope},
		{"EmptyScope", "key1 " + secret + " read,,write", reasonEmptyScope},
		{"SwappedFields", "key1 read,write,admin " + secret, reasonScope},
		{"Duplicate", "key1 " + secret + "2 read", fmt.Sprintf(reasonDuplicate, 3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := "# header\n\nkey1 " + secret + " write\n" + tc.line + "\n"
			p := writeFile(t, file)
			_, err := NewStore(p)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			if pe.Line != 4 || pe.Path != p || pe.Reason != tc.reason {
				t.Errorf("got %+v, want line 4 reason %q", pe, tc.reason)
			}
			if msg := err.Error(); strings.Contains(msg, secret) || !strings.Contains(msg, ":4: ") {
				t.Errorf("error text %q leaks the secret or lacks the line number", msg)
			}
		})
	}
}

func TestCredentialRedaction(t *testing.T) {
	s := newTestStore(t)
	c, _ := s.Lookup(testID)
	var logBuf strings.Builder
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("key", "cred", c)
	js, _ := json.Marshal(c)
	for _, out := range []string{
		fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s %q", c, c, c, c, c), fmt.Sprintf("%v", []Credential{c}),
		fmt.Sprintf("%+v", map[string]Credential{"k": c}), fmt.Sprintf("%v", &c), logBuf.String(), string(js),
	} {
		if strings.Contains(out, testSecret) {
			t.Errorf("secret in %q", out)
		}
		if !strings.Contains(out, testID) {
			t.Errorf("ID missing from %q", out)
		}
	}
}

func TestStoreWarnings(t *testing.T) {
	p := writeFile(t, testCredentials)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(p)
	if err != nil {
		t.Fatal(err)
	}
	w := s.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], "0644") || !strings.Contains(w[0], p) {
		t.Errorf("warnings %q", w)
	}
	// A file with no keys loads, with a warning.
	s, err = NewStore(writeFile(t, "# nobody yet\n"))
	if err != nil || s.Len() != 0 || len(s.Warnings()) != 1 {
		t.Errorf("empty file: %v %v", s.Warnings(), err)
	}
	if _, err := NewStore(p + ".missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := NewStore(t.TempDir()); err == nil {
		t.Error("a directory loaded")
	}
}

func TestReload(t *testing.T) {
	p := writeFile(t, testCredentials)
	s, err := NewStore(p)
	if err != nil {
		t.Fatal(err)
	}
	// A bad file leaves the old set in force.
	const secret = "NewSecretValue99"
	if err := os.WriteFile(p, []byte("newkey "+secret+" reed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = s.Reload()
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 1 || strings.Contains(err.Error(), secret) {
		t.Fatalf("Reload error %v", err)
	}
	if _, ok := s.Lookup(testID); !ok || s.Len() != 3 {
		t.Fatal("old set not kept after a failed reload")
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil || s.Len() != 3 {
		t.Fatalf("Reload of a missing file: %v, Len %d", err, s.Len())
	}
	// A good file replaces it.
	if err := os.WriteFile(p, []byte("newkey "+secret+" read\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Lookup(testID); ok || s.Len() != 1 {
		t.Error("old keys still in force")
	}
	if c, ok := s.Lookup("newkey"); !ok || c.secret != secret {
		t.Error("new key missing")
	}
}

// TestReloadConcurrent looks keys up while the file is reloaded between
// two versions; every lookup must see one whole version. Run with -race.
func TestReloadConcurrent(t *testing.T) {
	v1 := "key1 secret-one-1 read\nkey2 secret-two-2 read\n"
	v2 := "key1 secret-one-1 read\nkey3 secret-3333 write\n"
	p := writeFile(t, v1)
	s, err := NewStore(p)
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				_, ok1 := s.Lookup("key1")
				if !ok1 {
					t.Error("key1 missing")
					return
				}
				if n := s.Len(); n != 2 {
					t.Errorf("Len %d", n)
					return
				}
			}
		}()
	}
	for i := range 50 {
		content := v1
		if i%2 == 1 {
			content = v2
		}
		if i%5 == 4 {
			content = "broken line\n"
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		err := s.Reload()
		if (err != nil) != (i%5 == 4) {
			t.Errorf("reload %d: %v", i, err)
		}
	}
	stop.Store(true)
	wg.Wait()
}
