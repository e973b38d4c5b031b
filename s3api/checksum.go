package s3api

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"hash"
	"io"
	"net/http"

	"github.com/objstore/objstore/auth"
)

// checksumHeaders are the headers of body checksums S3 clients send: the
// MD5 of Content-MD5, and auth.NewChecksum's x-amz-checksum-* names.
var checksumHeaders = []string{"Content-Md5", "X-Amz-Checksum-Crc32", "X-Amz-Checksum-Crc32c", "X-Amz-Checksum-Crc64nvme",
	"X-Amz-Checksum-Sha1", "X-Amz-Checksum-Sha256", "X-Amz-Checksum-Sha512"}

func newChecksum(header string) hash.Hash {
	if header == "Content-Md5" {
		return md5.New()
	}
	h, _ := auth.NewChecksum(header)
	return h
}

// checkedBody returns body, checked against the checksums its request's
// headers carry (Content-MD5 and x-amz-checksum-*, base64-encoded): at its
// end, a body that does not match fails with an error matching
// errBadDigest instead of io.EOF, so nothing is committed. A malformed
// checksum header fails at once (errInvalidDigest).
func checkedBody(body io.Reader, h http.Header) (io.Reader, error) {
	var sums []wantSum
	for _, name := range checksumHeaders {
		v := h.Get(name)
		if v == "" {
			continue
		}
		want, err := base64.StdEncoding.DecodeString(v)
		hh := newChecksum(name)
		if err != nil || len(want) != hh.Size() {
			return nil, fmt.Errorf("%w: %s %q", errInvalidDigest, name, v)
		}
		sums = append(sums, wantSum{name, hh, want})
	}
	if len(sums) == 0 {
		return body, nil
	}
	return &sumReader{r: body, sums: sums}, nil
}

type wantSum struct {
	header string
	h      hash.Hash
	want   []byte
}

// sumReader hashes a body as it streams and checks the sums at its end.
type sumReader struct {
	r    io.Reader
	sums []wantSum
	err  error // sticky once the end is reached
}

func (s *sumReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	for _, c := range s.sums {
		c.h.Write(p[:n])
	}
	if err == io.EOF {
		for _, c := range s.sums {
			if !bytes.Equal(c.h.Sum(nil), c.want) {
				err = fmt.Errorf("%w: %s", errBadDigest, c.header)
				break
			}
		}
		s.err = err
	}
	return n, err
}
