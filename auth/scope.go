package auth

import (
	"fmt"
	"strings"
)

// Scope is one permission an access key can hold. The values are distinct
// bits so that a set of them fits in a Scopes.
type Scope uint8

// The scopes a credentials file can grant. Each is explicit, except that
// ScopeAdmin implies every other scope: holding ScopeWrite does not grant
// ScopeRead.
const (
	// ScopeRead allows reading objects and listings.
	ScopeRead Scope = 1 << iota
	// ScopeWrite allows creating, replacing and deleting objects.
	ScopeWrite
	// ScopeAdmin allows administrative operations and implies all scopes.
	ScopeAdmin
)

// allScopes is the union of the defined scopes; any other bit is invalid.
const allScopes = ScopeRead | ScopeWrite | ScopeAdmin

// ParseScope returns the Scope named s: "read", "write" or "admin"
// (lower case only). Any other string is an error that quotes s, so do not
// pass it text that may hold a secret.
func ParseScope(s string) (Scope, error) {
	switch s {
	case "read":
		return ScopeRead, nil
	case "write":
		return ScopeWrite, nil
	case "admin":
		return ScopeAdmin, nil
	}
	return 0, fmt.Errorf("auth: unknown scope %q (want read, write or admin)", s)
}

// String returns the scope's name as ParseScope accepts it, or
// "Scope(N)" for a value that is not a single defined scope.
func (s Scope) String() string {
	switch s {
	case ScopeRead:
		return "read"
	case ScopeWrite:
		return "write"
	case ScopeAdmin:
		return "admin"
	}
	return fmt.Sprintf("Scope(%d)", uint8(s))
}

// Scopes is a set of Scope values. The zero value is the empty set.
// Build one with a conversion, e.g. Scopes(ScopeRead|ScopeWrite).
type Scopes uint8

// Has reports whether the set grants want: either it holds every bit of
// want, or it holds ScopeAdmin. A zero or undefined want is never granted.
func (s Scopes) Has(want Scope) bool {
	if want == 0 || want&^allScopes != 0 {
		return false
	}
	if s&Scopes(ScopeAdmin) != 0 {
		return true
	}
	return s&Scopes(want) == Scopes(want)
}

// String lists the scopes in the set in the credentials file's syntax,
// e.g. "read,write"; the empty set is "".
func (s Scopes) String() string {
	var names []string
	for _, sc := range []Scope{ScopeRead, ScopeWrite, ScopeAdmin} {
		if s&Scopes(sc) != 0 {
			names = append(names, sc.String())
		}
	}
	return strings.Join(names, ",")
}
