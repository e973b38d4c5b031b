package api

import (
	"embed"
	"net/http"
	"time"

	"github.com/objstore/objstore/node"
)

// ui holds the status page: plain HTML, CSS and JavaScript, embedded in
// the binary, with no build step and nothing fetched from elsewhere.
//
//go:embed ui
var ui embed.FS

// statusTimeout bounds how long the status waits for each peer's.
const statusTimeout = 2 * time.Second

// pageCSP lets the status page load its own script and style and call the
// API, and nothing else: no inline script, no other origin, no framing.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// statusResponse is /api/v1/status: the cluster's members as the node
// answering sees them, each with its status.
type statusResponse struct {
	NodeID  string              `json:"node_id"`
	Version string              `json:"version"`
	Time    time.Time           `json:"time"`
	Members []node.MemberStatus `json:"members"`
}

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	ms, err := s.store.ClusterStatus(r.Context(), statusTimeout)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, statusResponse{NodeID: s.store.ID().String(), Version: s.version, Time: time.Now().UTC(), Members: ms})
}

// page serves a file of the status page.
func page(name, contentType string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := ui.ReadFile("ui/" + name)
		if err != nil { // cannot happen: the files are embedded
			writeError(w, http.StatusInternalServerError, "internal error")
			return
		}
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		w.Write(b)
	}
}
