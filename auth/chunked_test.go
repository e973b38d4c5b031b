package auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The test builds aws-chunked bodies itself: chunk signatures come from
// the AWS SDK's own SigV4 stream signer (v4.StreamSigner, whose
// string-to-sign with empty headers is the aws-chunked one), and trailer
// signatures and checksums from the few lines below, which share no code
// with the package.

// frame is one chunk of an aws-chunked body as sent.
type frame struct {
	size string // hex
	sig  string // hex chunk signature, "" in unsigned bodies
	data []byte
}

// chunked is an aws-chunked body, kept in parts so tests can tamper with it.
type chunked struct {
	frames   []frame  // the final zero-size chunk included
	trailers []string // trailing header lines, without CRLF, sent after a final chunk
	starts   []int    // where each frame's data starts in the payload
}

func (c *chunked) bytes() []byte {
	var b bytes.Buffer
	for _, f := range c.frames {
		b.WriteString(f.size)
		if f.sig != "" {
			b.WriteString(";chunk-signature=" + f.sig)
		}
		b.WriteString("\r\n")
		if f.size != "0" {
			b.Write(f.data)
			b.WriteString("\r\n")
		}
	}
	if n := len(c.frames); n > 0 && c.frames[n-1].size == "0" {
		for _, l := range c.trailers {
			b.WriteString(l + "\r\n")
		}
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// clone returns a deep copy of c.
func (c *chunked) clone() *chunked {
	d := &chunked{trailers: append([]string(nil), c.trailers...), starts: append([]int(nil), c.starts...)}
	for _, f := range c.frames {
		d.frames = append(d.frames, frame{f.size, f.sig, bytes.Clone(f.data)})
	}
	return d
}

// testChecksum returns the base64 trailing checksum of data.
func testChecksum(t testing.TB, name string, data []byte) string {
	t.Helper()
	var h hash.Hash
	switch name {
	case "x-amz-checksum-crc32":
		h = crc32.NewIEEE()
	case "x-amz-checksum-crc32c":
		h = crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "x-amz-checksum-crc64nvme":
		h = crc64.New(crc64.MakeTable(0x9a6c9329ac4bc9b5))
	case "x-amz-checksum-sha1":
		h = sha1.New()
	case "x-amz-checksum-sha256":
		h = sha256.New()
	case "x-amz-checksum-sha512":
		h = sha512.New()
	default:
		t.Fatalf("no checksum %s", name)
	}
	h.Write(data)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func testHMAC(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// streamSigner signs the chunks and trailer of one request.
type streamSigner struct {
	secret, region string
	at             time.Time
	seed           []byte
}

// encode builds payload as an aws-chunked body of the given mode (a
// STREAMING-* value) in chunks of the given sizes, the last size repeated
// until the payload is used up. trailer names the trailing checksum, ""
// for none, and checksum overrides its value when not "".
func (s streamSigner) encode(t testing.TB, mode string, payload []byte, sizes []int, trailer, checksum string) *chunked {
	t.Helper()
	signed := mode != streamingUnsignedTrailer
	var ss *v4.StreamSigner
	if signed {
		ss = v4.NewStreamSigner(aws.Credentials{AccessKeyID: "x", SecretAccessKey: s.secret}, "s3", s.region, s.seed)
	}
	c := &chunked{}
	var last []byte
	add := func(data []byte, start int) {
		f := frame{size: strconv.FormatInt(int64(len(data)), 16), data: data}
		if signed {
			sig, err := ss.GetSignature(context.Background(), nil, data, s.at)
			if err != nil {
				t.Fatal(err)
			}
			last, f.sig = sig, hex.EncodeToString(sig)
		}
		c.frames = append(c.frames, f)
		c.starts = append(c.starts, start)
	}
	for off, i := 0, 0; off < len(payload); i++ {
		n := min(sizes[min(i, len(sizes)-1)], len(payload)-off)
		add(bytes.Clone(payload[off:off+n]), off)
		off += n
	}
	add(nil, len(payload))
	if trailer != "" {
		if checksum == "" {
			checksum = testChecksum(t, trailer, payload)
		}
		c.trailers = append(c.trailers, trailer+":"+checksum)
	}
	if mode == streamingSignedTrailer {
		date := s.at.Format("20060102")
		key := testHMAC(testHMAC(testHMAC(testHMAC([]byte("AWS4"+s.secret), date), s.region), "s3"), "aws4_request")
		canonical := ""
		for _, l := range c.trailers {
			canonical += l + "\n"
		}
		sum := sha256.Sum256([]byte(canonical))
		toSign := "AWS4-HMAC-SHA256-TRAILER\n" + s.at.Format("20060102T150405Z") + "\n" + date + "/" + s.region +
			"/s3/aws4_request\n" + hex.EncodeToString(last) + "\n" + hex.EncodeToString(sum[:])
		c.trailers = append(c.trailers, "x-amz-trailer-signature:"+hex.EncodeToString(testHMAC(key, toSign)))
	}
	return c
}

// streamingRequest returns a PUT with an aws-chunked payload hash, signed
// by the SDK's signer at testNow and authenticated, and the signer for
// its body. trailer, if not "", is sent as x-amz-trailer; declared, if
// not negative, as x-amz-decoded-content-length.
func streamingRequest(t testing.TB, s *Store, mode, trailer string, declared int64) (*http.Request, Principal, streamSigner) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPut, "http://objstore.test/bucket/k", nil)
	req.Header.Set("Content-Encoding", "aws-chunked")
	if trailer != "" {
		req.Header.Set("X-Amz-Trailer", trailer)
	}
	if declared >= 0 {
		req.Header.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(declared, 10))
	}
	sdkSign(t, req, testID, testSecret, mode, testNow)
	_, sig, _ := strings.Cut(req.Header.Get("Authorization"), "Signature=")
	seed, err := hex.DecodeString(sig)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Authenticate(req)
	wantErr(t, err, nil)
	return req, p, streamSigner{secret: testSecret, region: "us-east-1", at: testNow, seed: seed}
}

// readBody reads body through VerifyBody(req, p), wrapped by wrap if not
// nil, and returns what it read before io.EOF or the error.
func readBody(req *http.Request, p Principal, body []byte, wrap func(io.Reader) io.Reader) ([]byte, error) {
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	var r io.Reader = VerifyBody(req, p)
	if wrap != nil {
		r = wrap(r)
	}
	return io.ReadAll(r)
}

var streamingModes = []string{streamingSigned, streamingSignedTrailer, streamingUnsignedTrailer}

// testPayload returns n bytes that differ from chunk to chunk.
func testPayload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// TestChunkedAWSExamples decodes the examples of AWS's documentation
// (sigv4-streaming.html and sigv4-streaming-trailers.html in the Amazon
// S3 API reference): a 66560-byte object of 'a's sent as a 64 KiB chunk
// and a 1 KiB chunk, signed with the documentation's example key, seed
// signature included.
func TestChunkedAWSExamples(t *testing.T) {
	const (
		id     = "AKIAIOSFODNN7EXAMPLE"
		secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	)
	at := time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)
	s, err := NewStore(writeFile(t, id+" "+secret+" write\n"), WithClock(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("a"), 66560)
	for _, tc := range []struct {
		mode, signedHeaders, seed string
		sigs                      [3]string
		trailers                  []string
	}{{
		mode:          streamingSigned,
		signedHeaders: "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
		seed:          "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
		sigs: [3]string{"ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
			"0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
			"b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"},
	}, {
		mode:          streamingSignedTrailer,
		signedHeaders: "content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer",
		seed:          "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e",
		sigs: [3]string{"b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
			"1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
			"2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992"},
		trailers: []string{"x-amz-checksum-crc32c:sOO8/Q==",
			"x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"},
	}} {
		t.Run(tc.mode, func(t *testing.T) {
			c := &chunked{frames: []frame{{"10000", tc.sigs[0], payload[:65536]}, {"400", tc.sigs[1], payload[65536:]},
				{"0", tc.sigs[2], nil}}, trailers: tc.trailers}
			body := c.bytes()
			req := httptest.NewRequest(http.MethodPut, "http://s3.amazonaws.com/examplebucket/chunkObject.txt", bytes.NewReader(body))
			req.Header.Set("X-Amz-Date", "20130524T000000Z")
			req.Header.Set("X-Amz-Storage-Class", "REDUCED_REDUNDANCY")
			req.Header.Set("X-Amz-Content-Sha256", tc.mode)
			req.Header.Set("Content-Encoding", "aws-chunked")
			req.Header.Set("X-Amz-Decoded-Content-Length", "66560")
			if tc.trailers != nil {
				req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32c")
			} else {
				req.Header.Set("Content-Length", "66824") // as signed; the body is exactly that long
				if len(body) != 66824 {
					t.Fatalf("body is %d bytes", len(body))
				}
			}
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+id+"/20130524/us-east-1/s3/aws4_request,SignedHeaders="+
				tc.signedHeaders+",Signature="+tc.seed)
			p, err := s.Authenticate(req)
			wantErr(t, err, nil)
			got, err := io.ReadAll(VerifyBody(req, p))
			wantErr(t, err, nil)
			if !bytes.Equal(got, payload) {
				t.Errorf("decoded %d bytes", len(got))
			}
			// And the documentation's signatures are what the test's
			// encoder, built on the SDK's signer, produces.
			k := streamSigner{secret: secret, region: "us-east-1", at: at, seed: p.stream.seed}
			trailer := ""
			if tc.trailers != nil {
				trailer = "x-amz-checksum-crc32c"
			}
			if enc := k.encode(t, tc.mode, payload, []int{65536}, trailer, ""); !bytes.Equal(enc.bytes(), body) {
				t.Errorf("the test encoder disagrees with the documentation")
			}
		})
	}
}

// TestChunkedRoundTrip decodes bodies of each variant, built with chunk
// sizes from 1 byte up, read in one go, in 1-byte reads and by
// iotest.TestReader.
func TestChunkedRoundTrip(t *testing.T) {
	s := newTestStore(t)
	for _, mode := range streamingModes {
		for _, n := range []int{0, 1, 2, 100, 8192, 65536, 200001} {
			for _, sizes := range [][]int{{1}, {7, 1}, {8192}, {65536}, {1 << 20}} {
				if n/sizes[len(sizes)-1] > 5000 {
					continue // too many chunks to be worth the time
				}
				trailer := ""
				if mode != streamingSigned {
					trailer = "x-amz-checksum-crc32"
				}
				declared := int64(n)
				if n%2 == 1 {
					declared = -1 // and without x-amz-decoded-content-length
				}
				req, p, k := streamingRequest(t, s, mode, trailer, declared)
				payload := testPayload(n)
				body := k.encode(t, mode, payload, sizes, trailer, "").bytes()
				name := fmt.Sprintf("%s/%d/%v", mode, n, sizes)
				for _, wrap := range []func(io.Reader) io.Reader{nil, iotest.OneByteReader, iotest.HalfReader} {
					got, err := readBody(req, p, body, wrap)
					if err != nil || !bytes.Equal(got, payload) {
						t.Fatalf("%s: %d bytes, %v", name, len(got), err)
					}
				}
				req.Body = io.NopCloser(bytes.NewReader(body))
				if err := iotest.TestReader(VerifyBody(req, p), payload); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
		}
	}
}

// TestChunkedChecksums verifies each trailing checksum algorithm, in both
// trailer variants.
func TestChunkedChecksums(t *testing.T) {
	s := newTestStore(t)
	payload := testPayload(100000)
	for _, mode := range []string{streamingSignedTrailer, streamingUnsignedTrailer} {
		for name := range trailerChecksums {
			req, p, k := streamingRequest(t, s, mode, name, int64(len(payload)))
			got, err := readBody(req, p, k.encode(t, mode, payload, []int{65536}, name, "").bytes(), nil)
			if err != nil || !bytes.Equal(got, payload) {
				t.Errorf("%s %s: %d bytes, %v", mode, name, len(got), err)
			}
			// A checksum of other data fails, at the end.
			bad := testChecksum(t, name, payload[1:])
			got, err = readBody(req, p, k.encode(t, mode, payload, []int{65536}, name, bad).bytes(), nil)
			if !errors.Is(err, ErrChecksum) || !bytes.Equal(got, payload) {
				t.Errorf("%s %s: bad checksum: %d bytes, %v", mode, name, len(got), err)
			}
		}
	}
	// CRC-64/NVME's check value: the CRC of "123456789".
	h := crc64.New(crc64NVMETable())
	h.Write([]byte("123456789"))
	if got := h.Sum64(); got != 0xae8b14860a799888 {
		t.Errorf("CRC-64/NVME check %#x", got)
	}
}

// TestChunkedTampering changes signed bodies in the ways an attacker or
// a broken client would, and checks the error and that nothing of a bad
// chunk was handed out.
func TestChunkedTampering(t *testing.T) {
	s := newTestStore(t)
	payload := testPayload(3*1000 + 17) // chunks of 1000, 1000, 1000, 17
	sizes := []int{1000}
	type tamper struct {
		name string
		mut  func(c *chunked)
		want error
		keep int // payload bytes that may be handed out before the error
	}
	for _, mode := range []string{streamingSigned, streamingSignedTrailer} {
		trailer := ""
		if mode == streamingSignedTrailer {
			trailer = "x-amz-checksum-sha256"
		}
		req, p, k := streamingRequest(t, s, mode, trailer, int64(len(payload)))
		good := k.encode(t, mode, payload, sizes, trailer, "")
		tampers := []tamper{}
		for i := range good.frames[:4] {
			tampers = append(tampers,
				tamper{fmt.Sprintf("FlipData%d", i), func(c *chunked) { c.frames[i].data[len(c.frames[i].data)/2] ^= 0x20 }, ErrChunkSignature, good.starts[i]},
				tamper{fmt.Sprintf("WrongSignature%d", i), func(c *chunked) { c.frames[i].sig = c.frames[(i+1)%4].sig }, ErrChunkSignature, good.starts[i]},
			)
		}
		tampers = append(tampers,
			tamper{"WrongFinalSignature", func(c *chunked) { c.frames[4].sig = strings.Repeat("0", 64) }, ErrChunkSignature, len(payload)},
			tamper{"Reordered", func(c *chunked) { c.frames[1], c.frames[2] = c.frames[2], c.frames[1] }, ErrChunkSignature, 1000},
			tamper{"Dropped", func(c *chunked) { c.frames = append(c.frames[:1], c.frames[2:]...) }, ErrChunkSignature, 1000},
			tamper{"Duplicated", func(c *chunked) { c.frames = append(c.frames[:2], c.frames[1:]...) }, ErrChunkSignature, 2000},
			tamper{"NoFinalChunk", func(c *chunked) { c.frames, c.trailers = c.frames[:4], nil }, ErrIncompleteBody, len(payload)},
			tamper{"SizeTooSmall", func(c *chunked) { c.frames[1].size = "3e7" }, ErrChunkEncoding, 1000},
			tamper{"SizeTooLarge", func(c *chunked) { c.frames[1].size = "3e9" }, ErrChunkEncoding, 1000},
			tamper{"SizeNotHex", func(c *chunked) { c.frames[0].size = "3eg" }, ErrChunkEncoding, 0},
			tamper{"SizeSigned", func(c *chunked) { c.frames[0].size = "+3e8" }, ErrChunkEncoding, 0},
			tamper{"OversizeChunk", func(c *chunked) { c.frames[0].size = strconv.FormatInt(MaxChunkSize+1, 16) }, ErrChunkEncoding, 0},
			tamper{"HugeChunk", func(c *chunked) { c.frames[0].size = "ffffffffffffffffff" }, ErrChunkEncoding, 0},
			tamper{"LongHeaderLine", func(c *chunked) { c.frames[0].sig += strings.Repeat("0", 5000) }, ErrChunkEncoding, 0},
			tamper{"ShortSignature", func(c *chunked) { c.frames[0].sig = c.frames[0].sig[:62] }, ErrChunkEncoding, 0},
			tamper{"NoSignature", func(c *chunked) { c.frames[2].sig = "" }, ErrChunkEncoding, 2000},
			tamper{"LongerThanDeclared", func(c *chunked) {
				c.frames = append(c.frames[:4:4], append([]frame{{"1", c.frames[3].sig, []byte("x")}}, c.frames[4:]...)...)
			}, ErrIncompleteBody, len(payload)},
		)
		if mode == streamingSignedTrailer {
			tampers = append(tampers,
				tamper{"BadTrailerSignature", func(c *chunked) { c.trailers[1] = "x-amz-trailer-signature:" + c.frames[4].sig }, ErrChunkSignature, len(payload)},
				tamper{"ChangedChecksum", func(c *chunked) {
					c.trailers[0] = "x-amz-checksum-sha256:" + testChecksum(t, "x-amz-checksum-sha256", nil)
				}, ErrChunkSignature, len(payload)},
				tamper{"NoTrailerSignature", func(c *chunked) { c.trailers = c.trailers[:1] }, ErrChunkSignature, len(payload)},
				tamper{"NoTrailers", func(c *chunked) { c.trailers = nil }, ErrChunkSignature, len(payload)},
				tamper{"ExtraTrailer", func(c *chunked) { c.trailers = append([]string{"x-amz-meta-a:b"}, c.trailers...) }, ErrChunkEncoding, len(payload)},
				tamper{"TrailerAfterSignature", func(c *chunked) { c.trailers = append(c.trailers, c.trailers[0]) }, ErrChunkEncoding, len(payload)},
			)
		} else {
			tampers = append(tampers,
				tamper{"UnexpectedTrailer", func(c *chunked) { c.trailers = []string{"x-amz-checksum-crc32:AAAAAA=="} }, ErrChunkEncoding, len(payload)},
			)
		}
		for _, tc := range tampers {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				c := good.clone()
				tc.mut(c)
				for _, wrap := range []func(io.Reader) io.Reader{nil, iotest.OneByteReader} {
					got, err := readBody(req, p, c.bytes(), wrap)
					if !errors.Is(err, tc.want) {
						t.Fatalf("got %v, want %v", err, tc.want)
					}
					if len(got) > tc.keep || !bytes.Equal(got, payload[:len(got)]) {
						t.Fatalf("handed out %d bytes, at most %d of the payload allowed", len(got), tc.keep)
					}
					if strings.Contains(err.Error(), testSecret) {
						t.Fatalf("error %q contains the secret", err)
					}
				}
			})
		}
	}
}

// TestChunkedTruncated cuts a body of each variant at every byte: each
// cut fails with ErrIncompleteBody, having handed out only payload bytes.
func TestChunkedTruncated(t *testing.T) {
	s := newTestStore(t)
	payload := testPayload(40)
	for _, mode := range streamingModes {
		trailer := ""
		if mode != streamingSigned {
			trailer = "x-amz-checksum-crc32c"
		}
		req, p, k := streamingRequest(t, s, mode, trailer, -1)
		body := k.encode(t, mode, payload, []int{16}, trailer, "").bytes()
		for cut := range len(body) {
			got, err := readBody(req, p, body[:cut], nil)
			if !errors.Is(err, ErrIncompleteBody) || !bytes.Equal(got, payload[:len(got)]) {
				t.Fatalf("%s cut at %d: %v, %d bytes", mode, cut, err, len(got))
			}
		}
		// Data after the end is refused too.
		if _, err := readBody(req, p, append(body, 'x'), nil); !errors.Is(err, ErrChunkEncoding) {
			t.Errorf("%s: trailing data: %v", mode, err)
		}
		// A read error of the body passes through.
		req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body[:30]), iotest.ErrReader(errors.New("conn reset"))))
		if _, err := io.ReadAll(VerifyBody(req, p)); err == nil || err.Error() != "conn reset" {
			t.Errorf("%s: read error: %v", mode, err)
		}
		// Go's server's error for a body shorter than its Content-Length
		// stays matchable.
		req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body[:30]), iotest.ErrReader(io.ErrUnexpectedEOF)))
		if _, err := io.ReadAll(VerifyBody(req, p)); !errors.Is(err, ErrIncompleteBody) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: short body: %v", mode, err)
		}
	}
}

// TestChunkedUnsigned covers what only the unsigned variant can get
// wrong, and the decoded length check, which it needs most.
func TestChunkedUnsigned(t *testing.T) {
	s := newTestStore(t)
	payload := testPayload(5000)
	const trailer = "x-amz-checksum-crc32"
	req, p, k := streamingRequest(t, s, streamingUnsignedTrailer, trailer, int64(len(payload)))
	good := k.encode(t, streamingUnsignedTrailer, payload, []int{1024}, trailer, "")
	for _, tc := range []struct {
		name string
		mut  func(c *chunked)
		want error
	}{
		{"FlipData", func(c *chunked) { c.frames[2].data[5] ^= 1 }, ErrChecksum},
		{"BadChecksum", func(c *chunked) { c.trailers[0] = trailer + ":AAAAAA==" }, ErrChecksum},
		{"ChecksumNotBase64", func(c *chunked) { c.trailers[0] = trailer + ":!!!!" }, ErrChunkEncoding},
		{"ChecksumWrongLength", func(c *chunked) { c.trailers[0] = trailer + ":AAAAAAA=" }, ErrChunkEncoding},
		{"ChecksumWithCR", func(c *chunked) {
			c.trailers[0] = c.trailers[0][:len(trailer)+3] + "\r" + c.trailers[0][len(trailer)+3:]
		}, ErrChunkEncoding},
		{"ChecksumNotCanonical", func(c *chunked) { // the same bytes, with a padding bit set
			v, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(c.trailers[0], trailer+":"))
			enc := []byte(base64.StdEncoding.EncodeToString(v))
			enc[5] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[strings.IndexByte(
				"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", enc[5])|1]
			c.trailers[0] = trailer + ":" + string(enc)
		}, ErrChunkEncoding},
		{"NoChecksum", func(c *chunked) { c.trailers = nil }, ErrChunkEncoding},
		{"OtherChecksum", func(c *chunked) { c.trailers[0] = "x-amz-checksum-crc32c:AAAAAA==" }, ErrChunkEncoding},
		{"TwoChecksums", func(c *chunked) { c.trailers = append(c.trailers, c.trailers[0]) }, ErrChunkEncoding},
		{"TrailerSignature", func(c *chunked) {
			c.trailers = append(c.trailers, "x-amz-trailer-signature:"+strings.Repeat("0", 64))
		}, ErrChunkEncoding},
		{"TrailerWithoutColon", func(c *chunked) { c.trailers[0] = "x-amz-checksum-crc32" }, ErrChunkEncoding},
		{"ChunkSignature", func(c *chunked) { c.frames[0].sig = strings.Repeat("0", 64) }, ErrChunkEncoding},
		{"DroppedChunk", func(c *chunked) { c.frames = append(c.frames[:1], c.frames[2:]...) }, ErrIncompleteBody},
		{"ExtraChunk", func(c *chunked) { c.frames = append(c.frames[:1], c.frames...) }, ErrIncompleteBody},
	} {
		got, err := readBody(req, p, func() []byte { c := good.clone(); tc.mut(c); return c.bytes() }(), nil)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
		if len(got) > len(payload) {
			t.Errorf("%s: %d bytes", tc.name, len(got))
		}
	}
	// Upper-case names and spaces around the value are the same trailer.
	c := good.clone()
	c.trailers[0] = "X-Amz-Checksum-CRC32: " + strings.TrimPrefix(c.trailers[0], trailer+":") + " "
	if got, err := readBody(req, p, c.bytes(), nil); err != nil || !bytes.Equal(got, payload) {
		t.Errorf("header case: %v", err)
	}
	// Line ends must be CRLF.
	bare := bytes.Replace(good.bytes(), []byte("\r\n0\r\n"), []byte("\r\n0\n"), 1)
	if _, err := readBody(req, p, bare, nil); !errors.Is(err, ErrChunkEncoding) {
		t.Errorf("bare LF: %v", err)
	}
	// A chunk larger than MaxChunkSize streams through: the AWS SDK for
	// Go sends a whole object as one chunk.
	big := testPayload(MaxChunkSize + 5)
	req, p, k = streamingRequest(t, s, streamingUnsignedTrailer, trailer, int64(len(big)))
	if got, err := readBody(req, p, k.encode(t, streamingUnsignedTrailer, big, []int{len(big)}, trailer, "").bytes(), nil); err != nil || !bytes.Equal(got, big) {
		t.Errorf("large unsigned chunk: %d bytes, %v", len(got), err)
	}
}

// TestChunkedDecodedLength checks x-amz-decoded-content-length both ways.
func TestChunkedDecodedLength(t *testing.T) {
	s := newTestStore(t)
	payload := testPayload(3000)
	for _, mode := range streamingModes {
		trailer := ""
		if mode != streamingSigned {
			trailer = "x-amz-checksum-sha1"
		}
		for _, declared := range []int64{0, 1, 2999, 3001, 1 << 40} {
			req, p, k := streamingRequest(t, s, mode, trailer, declared)
			got, err := readBody(req, p, k.encode(t, mode, payload, []int{1024}, trailer, "").bytes(), nil)
			if !errors.Is(err, ErrIncompleteBody) || int64(len(got)) > declared {
				t.Errorf("%s declared %d: %v after %d bytes", mode, declared, err, len(got))
			}
		}
		for _, bad := range []string{"-1", "+5", "x", "", "99999999999999999999"} {
			req, p, k := streamingRequest(t, s, mode, trailer, -1)
			req.Header.Set("X-Amz-Decoded-Content-Length", bad)
			if _, err := readBody(req, p, k.encode(t, mode, payload, []int{1024}, trailer, "").bytes(), nil); !errors.Is(err, ErrChunkEncoding) {
				t.Errorf("%s declared %q: %v", mode, bad, err)
			}
		}
	}
}

// TestChunkedRefused covers requests VerifyBody cannot decode at all.
func TestChunkedRefused(t *testing.T) {
	s := newTestStore(t)
	body := []byte("0\r\n\r\n")
	for _, tc := range []struct {
		name    string
		p       Principal
		trailer string
		want    error
	}{
		{"SigV4A", Principal{PayloadHash: "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"}, "", ErrStreamingPayload},
		{"SigV4ATrailer", Principal{PayloadHash: "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER"}, "", ErrStreamingPayload},
		// A signed variant without the Authorization header's key, as
		// a presigned URL or a caller-made Principal would have.
		{"SignedWithoutKey", Principal{PayloadHash: streamingSigned}, "", ErrStreamingPayload},
		{"SignedTrailerWithoutKey", Principal{PayloadHash: streamingSignedTrailer}, "", ErrStreamingPayload},
		{"UnknownChecksum", Principal{PayloadHash: streamingUnsignedTrailer}, "x-amz-checksum-xxhash64", ErrStreamingPayload},
		{"NotAChecksum", Principal{PayloadHash: streamingUnsignedTrailer}, "x-amz-meta-a", ErrChunkEncoding},
		{"TwoTrailers", Principal{PayloadHash: streamingUnsignedTrailer}, "x-amz-checksum-crc32,x-amz-checksum-sha1", ErrChunkEncoding},
	} {
		req := httptest.NewRequest(http.MethodPut, "/bucket/k", bytes.NewReader(body))
		if tc.trailer != "" {
			req.Header.Set("X-Amz-Trailer", tc.trailer)
		}
		if _, err := io.ReadAll(VerifyBody(req, tc.p)); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	// x-amz-trailer with a variant that has no trailers.
	req, p, k := streamingRequest(t, s, streamingSigned, "x-amz-checksum-crc32", -1)
	if _, err := readBody(req, p, k.encode(t, streamingSigned, nil, []int{1}, "", "").bytes(), nil); !errors.Is(err, ErrChunkEncoding) {
		t.Errorf("trailer without trailers: %v", err)
	}
	// An empty unsigned body without trailers is fine.
	req = httptest.NewRequest(http.MethodPut, "/bucket/k", bytes.NewReader(body))
	if got, err := io.ReadAll(VerifyBody(req, Principal{PayloadHash: streamingUnsignedTrailer})); err != nil || len(got) != 0 {
		t.Errorf("empty unsigned body: %q %v", got, err)
	}
}

// TestChunkedKeyNotShown checks that no formatting of a Principal, and no
// error, shows the signing key.
func TestChunkedKeyNotShown(t *testing.T) {
	s := newTestStore(t)
	req, p, k := streamingRequest(t, s, streamingSignedTrailer, "x-amz-checksum-crc32", -1)
	if p.stream == nil {
		t.Fatal("no stream key")
	}
	key := hex.EncodeToString(p.stream.key)
	_, err := readBody(req, p, k.encode(t, streamingSignedTrailer, []byte("abc"), []int{1}, "x-amz-checksum-crc32", "AAAAAA==").bytes(), nil)
	wantErr(t, err, ErrChecksum)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v", p, p, p), fmt.Sprintf("%v %+v %#v", &p, &p, p.stream), err.Error()} {
		if strings.Contains(out, key) || strings.Contains(out, fmt.Sprint(p.stream.key)) || strings.Contains(out, testSecret) {
			t.Errorf("key shown in %q", out)
		}
	}
	// Only signed streaming requests signed in the header carry a key.
	for _, mode := range []string{streamingUnsignedTrailer, emptySHA256} {
		r := httptest.NewRequest(http.MethodPut, "http://objstore.test/bucket/k", nil)
		sdkSign(t, r, testID, testSecret, mode, testNow)
		if p, err := s.Authenticate(r); err != nil || p.stream != nil {
			t.Errorf("%s: %v, key %v", mode, err, p.stream != nil)
		}
	}
}

// FuzzChunkedBody feeds arbitrary bodies to the VerifyBody reader of each
// aws-chunked variant. It must not panic; in a signed variant everything
// it hands out must be a prefix of a payload the test signed, and it may
// end with io.EOF only after a whole one; in the unsigned variant it may
// end with io.EOF only if the body carries the CRC-32 of what it handed
// out; with x-amz-decoded-content-length, only after that many bytes.
// Every error is one of the package's.
func FuzzChunkedBody(f *testing.F) {
	s := newTestStore(f)
	type variant struct {
		req  *http.Request
		p    Principal
		k    streamSigner
		mode string
	}
	var variants []variant
	for _, mode := range streamingModes {
		trailer := ""
		if mode != streamingSigned {
			trailer = "x-amz-checksum-crc32"
		}
		req, p, k := streamingRequest(f, s, mode, trailer, -1)
		variants = append(variants, variant{req, p, k, mode})
	}
	payloads := [][]byte{nil, []byte("a"), []byte("hello, objstore"), testPayload(300)}
	for i, v := range variants {
		trailer := v.req.Header.Get("X-Amz-Trailer")
		for _, payload := range payloads {
			for _, sizes := range [][]int{{1}, {5}, {64}} {
				body := v.k.encode(f, v.mode, payload, sizes, trailer, "").bytes()
				f.Add(uint8(i), int64(-1), body)
				f.Add(uint8(i), int64(len(payload)), body)
			}
		}
		f.Add(uint8(i), int64(-1), []byte("0\r\n\r\n"))
		f.Add(uint8(i), int64(3), []byte("3;chunk-signature="+strings.Repeat("0", 64)+"\r\nabc\r\n0\r\n\r\n"))
	}
	f.Fuzz(func(t *testing.T, mode uint8, declared int64, body []byte) {
		v := variants[int(mode)%len(variants)]
		req := v.req.Clone(context.Background())
		if declared >= 0 {
			req.Header.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(declared, 10))
		}
		var wrap func(io.Reader) io.Reader
		if mode&0x80 != 0 {
			wrap = iotest.OneByteReader
		}
		got, err := readBody(req, v.p, body, wrap)
		if err != nil {
			known := false
			for _, e := range []error{ErrChunkSignature, ErrChecksum, ErrIncompleteBody, ErrChunkEncoding} {
				known = known || errors.Is(err, e)
			}
			if !known {
				t.Fatalf("unexpected error %v", err)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Fatalf("error %q contains the secret", err)
			}
		}
		if err == nil && declared >= 0 && int64(len(got)) != declared {
			t.Fatalf("io.EOF after %d bytes, %d declared", len(got), declared)
		}
		if v.mode == streamingUnsignedTrailer {
			if err == nil && !bytes.Contains(body, []byte(testChecksum(t, "x-amz-checksum-crc32", got))) {
				t.Fatalf("io.EOF without the CRC-32 of %q in the body", got)
			}
			return
		}
		prefix, whole := false, false
		for _, pl := range payloads {
			prefix = prefix || bytes.HasPrefix(pl, got)
			whole = whole || bytes.Equal(pl, got)
		}
		if !prefix || err == nil && !whole {
			t.Fatalf("handed out %q (error %v), which no signed payload starts with or is", got, err)
		}
	})
}
