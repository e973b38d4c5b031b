package s3api

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
)

// crc64NVME is the table of CRC-64/NVME, the polynomial S3 uses for
// x-amz-checksum-crc64nvme (in the reversed form hash/crc64 takes).
var crc64NVME = crc64.MakeTable(0x9a6c9329ac4bc9b5)

// checksums are the body checksums S3 clients send in headers, by header.
var checksums = []struct {
	header string
	new    func() hash.Hash
}{
	{"Content-Md5", md5.New},
	{"X-Amz-Checksum-Crc32", func() hash.Hash { return crc32.NewIEEE() }},
	{"X-Amz-Checksum-Crc32c", func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) }},
	{"X-Amz-Checksum-Crc64nvme", func() hash.Hash { return crc64.New(crc64NVME) }},
	{"X-Amz-Checksum-Sha1", sha1.New},
	{"X-Amz-Checksum-Sha256", sha256.New},
}

// checkedBody returns body, checked against the checksums its request's
// headers carry (Content-MD5 and x-amz-checksum-*, base64-encoded): at its
// end, a body that does not match fails with an error matching
// errBadDigest instead of io.EOF, so nothing is committed. A malformed
// checksum header fails at once (errInvalidDigest).
func checkedBody(body io.Reader, h http.Header) (io.Reader, error) {
	var sums []wantSum
	for _, c := range checksums {
		v := h.Get(c.header)
		if v == "" {
			continue
		}
		want, err := base64.StdEncoding.DecodeString(v)
		hh := c.new()
		if err != nil || len(want) != hh.Size() {
			return nil, fmt.Errorf("%w: %s %q", errInvalidDigest, c.header, v)
		}
		sums = append(sums, wantSum{c.header, hh, want})
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
