package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/objstore/objstore/auth"
	"github.com/objstore/objstore/node"
)

// Authenticator checks the credentials a request carries; *auth.Store
// implements it. Errors wrap the auth package's sentinels.
type Authenticator interface {
	Authenticate(r *http.Request) (auth.Principal, error)
}

// guard returns a wrapper that serves a handler only to clients whose
// access key has scope. A SigV4 request whose signature covers the
// body's checksum has its body verified as it streams: a body that does
// not match fails at its end, before anything is committed. Without an
// Authenticator, everything but admin calls is open, and admin calls are
// served to clients on this machine only.
func (s *server) guard(scope auth.Scope) func(http.HandlerFunc) http.HandlerFunc {
	return func(next http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if s.auth == nil {
				if scope == auth.ScopeAdmin && !fromLoopback(r) {
					writeError(w, http.StatusForbidden, "administrative calls need --credentials-file and an admin key, or a client on the node's own machine")
					return
				}
				next(w, r)
				return
			}
			p, err := s.auth.Authenticate(r)
			switch {
			case errors.Is(err, auth.ErrNoCredentials):
				w.Header().Set("WWW-Authenticate", `Basic realm="objstore"`)
				writeError(w, http.StatusUnauthorized, "this API needs an access key: sign the request with AWS Signature Version 4, or use Basic authentication over TLS")
				return
			case errors.Is(err, auth.ErrMalformed):
				writeError(w, http.StatusBadRequest, err.Error())
				return
			case err != nil:
				s.log.Info("authentication failed", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
				// The challenge again, so that a browser asks anew.
				w.Header().Set("WWW-Authenticate", `Basic realm="objstore"`)
				writeError(w, http.StatusUnauthorized, err.Error())
				return
			case !p.Scopes.Has(scope):
				writeError(w, http.StatusForbidden, fmt.Sprintf("access key %s may %s; this call needs %s", p.AccessKeyID, p.Scopes, scope))
				return
			}
			r.Body = auth.VerifyBody(r, p)
			next(w, r)
		}
	}
}

// fromLoopback reports whether the client is on this machine.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	ip := net.ParseIP(host)
	return err == nil && ip != nil && ip.IsLoopback()
}

// keys lists this node's cluster keys by fingerprint (never the secrets).
func (s *server) keys(w http.ResponseWriter, r *http.Request) {
	keys, err := s.store.Keys()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, map[string]any{"node_id": s.store.ID().String(), "keys": keys})
}

// rotateKeyring installs, uses or removes a cluster secret on every live
// node.
func (s *server) rotateKeyring(w http.ResponseWriter, r *http.Request) {
	var req node.KeyringRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<10)).Decode(&req); err != nil {
		s.fail(w, r, fmt.Errorf("%w: keyring request: %w", node.ErrInvalid, err))
		return
	}
	res, err := s.store.RotateKeyring(r.Context(), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, res)
}
