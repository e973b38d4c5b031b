package api

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/node"
)

// maxUploadParts bounds the files of one batch upload.
const maxUploadParts = 1000

// uploadResult answers a batch upload: the files stored, in the order
// sent, and the error that stopped the batch, if any. Files stored before
// an error stay stored.
type uploadResult struct {
	Bucket string      `json:"bucket"`
	Stored []node.Meta `json:"stored"`
	Error  string      `json:"error,omitempty"`
	Failed string      `json:"failed,omitempty"` // the key the error is about
}

// uploadKeys stores each file of a multipart/form-data body in the bucket
// under ?path= joined by "/" with the file's name (as cachenator's
// /upload does): curl -F files=@a.jpg -F files=@b.jpg
// ".../api/v1/b/photos?path=2024". Each part streams to a PUT of its own at
// X-Meta-Level (default 1), one after the other, so no file is held in
// memory; form fields without a file name are refused.
func (s *server) uploadKeys(w http.ResponseWriter, r *http.Request) {
	level := journal.LevelRemote
	if v := r.Header.Get(HeaderLevel); v != "" {
		var err error
		if level, err = parseLevel(v); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	mr, err := r.MultipartReader()
	if err != nil {
		s.fail(w, r, fmt.Errorf("%w: a batch upload is a multipart/form-data body of files (curl -F files=@name): %v", node.ErrInvalid, err))
		return
	}
	dir := strings.Trim(r.URL.Query().Get("path"), "/")
	res := uploadResult{Bucket: r.PathValue("bucket"), Stored: []node.Meta{}}
	stop := func(key string, err error) {
		code, msg := s.failure(r, err)
		res.Error, res.Failed = msg, key
		w.Header().Set("Content-Type", contentTypeJSON)
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(res)
	}
	for i := 0; ; i++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			stop("", fmt.Errorf("%w: reading the multipart body: %v", node.ErrInvalid, err))
			return
		}
		name := partFileName(part.Header.Get("Content-Disposition"))
		switch {
		case i == maxUploadParts:
			stop("", fmt.Errorf("%w: more than %d files in one upload", node.ErrInvalid, maxUploadParts))
			return
		case name == "":
			stop("", fmt.Errorf("%w: part %d (%q) is not a file: every part needs a file name", node.ErrInvalid, i+1, part.FormName()))
			return
		}
		key := name
		if dir != "" {
			key = dir + "/" + name
		}
		if strings.HasPrefix(key, "/") || strings.Contains(key, "//") {
			// S3 takes such keys, but this API could not address them
			// afterwards (see checkKeyPath).
			stop(key, fmt.Errorf("%w: key %q has an empty path element", node.ErrInvalid, key))
			return
		}
		m, err := s.store.Put(r.Context(), node.PutRequest{Bucket: res.Bucket, Key: key, Level: level,
			ContentType: part.Header.Get("Content-Type"), Body: part, Size: -1})
		part.Close()
		if err != nil {
			stop(key, err)
			return
		}
		res.Stored = append(res.Stored, m)
	}
	writeJSON(w, res)
}

// partFileName returns a part's file name as sent, unlike
// multipart.Part.FileName, which keeps only its last path element: a
// name with slashes is a key with slashes.
func partFileName(disposition string) string {
	_, params, err := mime.ParseMediaType(disposition)
	if err != nil {
		return ""
	}
	return params["filename"]
}
