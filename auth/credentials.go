package auth

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
)

// Limits on the fields of a credentials file.
const (
	MinAccessKeyIDLen = 3
	MaxAccessKeyIDLen = 128
	MinSecretLen      = 8
	MaxSecretLen      = 256
)

// maxFileSize bounds how much of a credentials file is read, so that a
// wrong path (a device, a huge log) fails instead of exhausting memory.
const maxFileSize = 16 << 20

// Credential is one access key. Its secret is unexported and every
// formatting path (String, GoString, LogValue) leaves it out, so a
// Credential can be printed or logged without leaking the secret.
type Credential struct {
	// ID is the access key ID, as clients send it.
	ID string
	// Scopes is what the key is allowed to do.
	Scopes Scopes

	secret string
	keys   *signingKeys // derived from secret; shared by copies of the Credential
}

// String returns the ID and scopes, never the secret.
func (c Credential) String() string {
	return fmt.Sprintf("%s[%s]", c.ID, c.Scopes)
}

// GoString makes %#v print the same redacted form as String.
func (c Credential) GoString() string {
	return fmt.Sprintf("auth.Credential{ID: %q, Scopes: %q, secret: REDACTED}", c.ID, c.Scopes.String())
}

// LogValue makes log/slog record the ID and scopes, never the secret.
func (c Credential) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", c.ID), slog.String("scopes", c.Scopes.String()))
}

// ParseError reports a bad line of a credentials file. Its text names the
// file and the line number and says what is wrong, but never quotes any
// part of the line: a line that fails to parse may hold a secret, for
// instance with its fields in the wrong order.
type ParseError struct {
	// Path is the file's path as passed to NewStore.
	Path string
	// Line is the 1-based line number.
	Line int
	// Reason says what is wrong, in words that quote nothing from the file.
	Reason string
}

// Error returns "PATH:LINE: REASON".
func (e *ParseError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Reason)
}

// The reasons a line is rejected. They are fixed strings so that no error
// can carry text from the file.
const (
	reasonFields     = "want 3 fields: ACCESS_KEY_ID SECRET SCOPE[,SCOPE...]"
	reasonTrailing   = "unexpected text after the scopes (a comment must start with #)"
	reasonID         = "invalid access key ID: want 3 to 128 characters of A-Z a-z 0-9 _ . -"
	reasonSecret     = "invalid secret: want 8 to 256 printable ASCII characters, no spaces"
	reasonEmptyScope = "empty scope in the scope list"
	reasonScope      = "unknown scope (want read, write or admin)"
	reasonDuplicate  = "duplicate access key ID (first defined on line %d)"
)

// parseCredentials parses the contents of a credentials file; path is used
// only in errors. It returns the credentials by ID.
func parseCredentials(path string, data []byte) (map[string]Credential, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // tolerate a UTF-8 BOM from editors
	creds := make(map[string]Credential)
	firstLine := make(map[string]int)
	lineNo := 0
	for len(data) > 0 {
		lineNo++
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		fields := strings.FieldsFunc(string(line), isBlank)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		bad := func(reason string) error {
			return &ParseError{Path: path, Line: lineNo, Reason: reason}
		}
		if len(fields) < 3 {
			return nil, bad(reasonFields)
		}
		if len(fields) > 3 && !strings.HasPrefix(fields[3], "#") {
			return nil, bad(reasonTrailing)
		}
		id, secret, scopeList := fields[0], fields[1], fields[2]
		if !validAccessKeyID(id) {
			return nil, bad(reasonID)
		}
		if !validSecret(secret) {
			return nil, bad(reasonSecret)
		}
		var scopes Scopes
		for _, name := range strings.Split(scopeList, ",") {
			if name == "" {
				return nil, bad(reasonEmptyScope)
			}
			sc, err := ParseScope(name)
			if err != nil {
				return nil, bad(reasonScope) // not err: its text quotes the field
			}
			scopes |= Scopes(sc)
		}
		if first, dup := firstLine[id]; dup {
			return nil, bad(fmt.Sprintf(reasonDuplicate, first))
		}
		firstLine[id] = lineNo
		creds[id] = Credential{ID: id, Scopes: scopes, secret: secret, keys: &signingKeys{}}
	}
	return creds, nil
}

// isBlank separates fields: ASCII space and tab, plus the carriage return
// of CRLF line ends.
func isBlank(r rune) bool { return r == ' ' || r == '\t' || r == '\r' }

// validAccessKeyID reports whether id is 3..128 characters of
// [A-Za-z0-9_.-]; the set excludes '/', which separates the fields of a
// SigV4 credential scope, and ':', which ends the user name in Basic auth.
func validAccessKeyID(id string) bool {
	if len(id) < MinAccessKeyIDLen || len(id) > MaxAccessKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// validSecret reports whether s is 8..256 printable, non-space ASCII
// characters.
func validSecret(s string) bool {
	if len(s) < MinSecretLen || len(s) > MaxSecretLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
