package auth

import (
	"bufio"
	"bytes"
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
	"strconv"
	"strings"
	"sync"
)

// MaxChunkSize is the largest chunk of a signed aws-chunked body
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD and its -TRAILER form) that the
// VerifyBody reader accepts. Such a chunk is held in memory until its
// signature verifies, so a larger one fails with ErrChunkEncoding before
// any of it is read. S3 clients send 64 KiB chunks by default.
//
// Chunks of STREAMING-UNSIGNED-PAYLOAD-TRAILER bodies have no such bound:
// they carry no signature, so they stream through unbuffered, and the AWS
// SDK for Go sends a whole object as one chunk.
const MaxChunkSize = 16 << 20

// The aws-chunked payload hashes VerifyBody decodes.
const (
	streamingSigned          = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

const (
	chunkAlgorithm   = "AWS4-HMAC-SHA256-PAYLOAD"
	trailerAlgorithm = "AWS4-HMAC-SHA256-TRAILER"
	chunkSigExt      = "chunk-signature="
	trailerSigName   = "x-amz-trailer-signature"
	checksumPrefix   = "x-amz-checksum-"

	// maxChunkLine bounds a chunk header or trailer line; the longest
	// legitimate one, a trailing SHA-512, is under 120 bytes.
	maxChunkLine = 4096
	// maxTrailerLines bounds the trailing header lines: S3 allows one
	// checksum, plus the trailer signature.
	maxTrailerLines = 8
)

// crc64NVME is the CRC-64/NVME polynomial in the reversed form
// hash/crc64 takes; S3 names this checksum CRC64NVME.
const crc64NVME = 0x9a6c9329ac4bc9b5

var crc64NVMETable = sync.OnceValue(func() *crc64.Table { return crc64.MakeTable(crc64NVME) })

// trailerChecksums maps each trailing checksum header this package
// verifies to its hash.
var trailerChecksums = map[string]func() hash.Hash{
	"x-amz-checksum-crc32":     func() hash.Hash { return crc32.NewIEEE() },
	"x-amz-checksum-crc32c":    func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) },
	"x-amz-checksum-crc64nvme": func() hash.Hash { return crc64.New(crc64NVMETable()) },
	"x-amz-checksum-sha1":      sha1.New,
	"x-amz-checksum-sha256":    sha256.New,
	"x-amz-checksum-sha512":    sha512.New,
}

// NewChecksum returns a new hash of the body checksum that the S3 header
// name (x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1, -sha256 or
// -sha512, in any case) carries, and false for another name. The header's
// value is the base64 of the hash's sum.
func NewChecksum(header string) (hash.Hash, bool) {
	newHash, ok := trailerChecksums[strings.ToLower(header)]
	if !ok {
		return nil, false
	}
	return newHash(), true
}

// streamKey is what verifying the chunk signatures of a signed aws-chunked
// body takes; authHeader sets it. It holds the signing key of the
// request's day, so it stays unexported, behind a pointer (fmt prints a
// nested pointer as an address) and with redacting String methods.
type streamKey struct {
	key     []byte // the SigV4 signing key the seed signature was made with
	amzDate string // the request time as signed
	scope   string // DATE/REGION/s3/aws4_request
	seed    []byte // the Authorization header's signature
}

// String never shows the key.
func (k *streamKey) String() string { return "auth.streamKey{REDACTED}" }

// GoString makes %#v as safe as %v.
func (k *streamKey) GoString() string { return k.String() }

// chunkSignature returns the signature of a chunk whose data is data,
// chained on prev.
func (k *streamKey) chunkSignature(prev, data []byte) []byte {
	sum := sha256.Sum256(data)
	return hmacSHA256(k.key, chunkAlgorithm+"\n"+k.amzDate+"\n"+k.scope+"\n"+
		hex.EncodeToString(prev)+"\n"+emptySHA256+"\n"+hex.EncodeToString(sum[:]))
}

// trailerSignature returns the signature of the trailing headers, given
// as their canonical text ("name:value\n" each), chained on prev.
func (k *streamKey) trailerSignature(prev []byte, canonical string) []byte {
	sum := sha256.Sum256([]byte(canonical))
	return hmacSHA256(k.key, trailerAlgorithm+"\n"+k.amzDate+"\n"+k.scope+"\n"+
		hex.EncodeToString(prev)+"\n"+hex.EncodeToString(sum[:]))
}

// newChunkedBody returns the reader VerifyBody hands out for an
// aws-chunked body, or a failingBody if the request cannot be decoded.
func newChunkedBody(r *http.Request, body io.ReadCloser, p Principal) io.ReadCloser {
	b := &chunkedBody{body: body, declared: -1}
	switch p.PayloadHash {
	case streamingSigned:
	case streamingSignedTrailer, streamingUnsignedTrailer:
		b.trailers = true
	default:
		return &failingBody{body: body, err: fmt.Errorf("%w: unsupported aws-chunked variant (only %s, %s and %s)",
			ErrStreamingPayload, streamingSigned, streamingSignedTrailer, streamingUnsignedTrailer)}
	}
	if p.PayloadHash != streamingUnsignedTrailer {
		// Only authHeader sets the key: the seed signature must be the
		// Authorization header's.
		if p.stream == nil {
			return &failingBody{body: body, err: fmt.Errorf("%w: a signed aws-chunked body needs a request signed "+
				"with SigV4 in the Authorization header", ErrStreamingPayload)}
		}
		b.key, b.prev = p.stream, p.stream.seed
	}

	if vals := r.Header.Values("X-Amz-Decoded-Content-Length"); len(vals) > 0 {
		n, err := strconv.ParseUint(vals[0], 10, 63)
		if len(vals) > 1 || err != nil {
			return &failingBody{body: body, err: fmt.Errorf("%w: bad x-amz-decoded-content-length", ErrChunkEncoding)}
		}
		b.declared = int64(n)
	}

	var names []string
	for _, v := range r.Header.Values("X-Amz-Trailer") {
		for _, name := range strings.Split(v, ",") {
			if name = strings.ToLower(strings.TrimSpace(name)); name != "" {
				names = append(names, name)
			}
		}
	}
	switch {
	case len(names) == 0:
	case !b.trailers:
		return &failingBody{body: body, err: fmt.Errorf("%w: x-amz-trailer with %s, which has no trailing headers",
			ErrChunkEncoding, p.PayloadHash)}
	case len(names) > 1:
		return &failingBody{body: body, err: fmt.Errorf("%w: x-amz-trailer names more than one trailing header", ErrChunkEncoding)}
	default:
		newHash, ok := trailerChecksums[names[0]]
		switch {
		case ok:
			b.trailerName, b.sum = names[0], newHash()
		case strings.HasPrefix(names[0], checksumPrefix):
			return &failingBody{body: body, err: fmt.Errorf("%w: unsupported trailing checksum algorithm", ErrStreamingPayload)}
		default:
			return &failingBody{body: body, err: fmt.Errorf("%w: x-amz-trailer names a header other than "+
				"an x-amz-checksum-*", ErrChunkEncoding)}
		}
	}
	b.r = bufio.NewReaderSize(body, maxChunkLine)
	return b
}

// chunkedBody decodes and verifies an aws-chunked body as it is read:
//
//	chunk:    hex(size) [";chunk-signature=" sig] CRLF data CRLF
//	end:      "0" [";chunk-signature=" sig] CRLF
//	          *(name ":" value CRLF) CRLF
//
// A signed chunk is read whole and its signature verified before any of
// it is returned, so a chunk that fails is never handed out.
type chunkedBody struct {
	body     io.ReadCloser
	r        *bufio.Reader
	key      *streamKey // nil for unsigned chunks
	prev     []byte     // the previous signature in the chain
	trailers bool       // the variant ends with trailing headers

	trailerName string    // the checksum x-amz-trailer names, or ""
	sum         hash.Hash // of the decoded data, when trailerName is set

	declared int64 // x-amz-decoded-content-length, or -1
	decoded  int64 // data bytes handed out or being handed out
	chunks   int   // chunks seen, for error messages

	buf    bytes.Buffer // signed: the current chunk's data
	out    []byte       // signed: the verified data not yet returned
	left   int64        // unsigned: data of the current chunk not yet read
	inData bool         // unsigned: the CRLF after the current chunk's data is still to come

	err error // sticky: io.EOF, or why the body failed
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	if len(p) == 0 && b.err == nil {
		return 0, nil
	}
	for b.err == nil {
		switch {
		case len(b.out) > 0:
			n := copy(p, b.out)
			b.out = b.out[n:]
			return n, nil
		case b.left > 0:
			return b.readData(p)
		default:
			b.err = b.nextChunk()
		}
	}
	return 0, b.err
}

func (b *chunkedBody) Close() error { return b.body.Close() }

// readData reads data of the current unsigned chunk.
func (b *chunkedBody) readData(p []byte) (int, error) {
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	b.decoded += int64(n)
	if b.sum != nil {
		b.sum.Write(p[:n])
	}
	if err != nil {
		b.err = incomplete(err)
		return n, b.err
	}
	return n, nil
}

// nextChunk reads the next chunk header and, for a signed chunk, its
// verified data; at the final chunk it checks the end of the body.
func (b *chunkedBody) nextChunk() error {
	if b.inData {
		if err := b.crlf(); err != nil {
			return err
		}
		b.inData = false
	}
	b.chunks++
	line, err := b.line()
	if err != nil {
		return err
	}
	size, sig, err := b.parseHeader(line)
	if err != nil {
		return err
	}
	if b.declared >= 0 && size > b.declared-b.decoded {
		return fmt.Errorf("%w: the body is longer than x-amz-decoded-content-length", ErrIncompleteBody)
	}
	if b.key == nil {
		if size == 0 {
			return b.finish()
		}
		b.left, b.inData = size, true
		return nil
	}

	// A signed chunk: read it whole (the buffer grows only as data
	// arrives, so a client that announces a large chunk and sends little
	// holds little memory), then verify it.
	b.buf.Reset()
	if size > 0 {
		if _, err := io.CopyN(&b.buf, b.r, size); err != nil {
			return incomplete(err)
		}
		if err := b.crlf(); err != nil {
			return err
		}
	}
	data := b.buf.Bytes()
	if !hmac.Equal(b.key.chunkSignature(b.prev, data), sig) {
		return fmt.Errorf("%w: chunk %d", ErrChunkSignature, b.chunks)
	}
	b.prev = sig
	if size == 0 {
		return b.finish()
	}
	if b.sum != nil {
		b.sum.Write(data)
	}
	b.decoded += size
	b.out = data
	return nil
}

// parseHeader parses a chunk header line (without its CRLF).
func (b *chunkedBody) parseHeader(line string) (size int64, sig []byte, err error) {
	hexSize, ext, hasExt := strings.Cut(line, ";")
	n, perr := strconv.ParseUint(hexSize, 16, 63)
	if perr != nil || len(hexSize) > 16 {
		return 0, nil, fmt.Errorf("%w: bad size in chunk %d", ErrChunkEncoding, b.chunks)
	}
	switch {
	case b.key == nil && hasExt:
		return 0, nil, fmt.Errorf("%w: chunk %d has an extension in an unsigned body", ErrChunkEncoding, b.chunks)
	case b.key == nil:
	case !hasExt || !strings.HasPrefix(ext, chunkSigExt):
		return 0, nil, fmt.Errorf("%w: chunk %d has no chunk-signature", ErrChunkEncoding, b.chunks)
	default:
		sig, perr = hex.DecodeString(ext[len(chunkSigExt):])
		if perr != nil || len(sig) != sha256.Size {
			return 0, nil, fmt.Errorf("%w: chunk %d: chunk-signature must be 64 hex digits", ErrChunkEncoding, b.chunks)
		}
		if n > MaxChunkSize {
			return 0, nil, fmt.Errorf("%w: chunk %d is %d bytes, more than the %d a signed chunk may have",
				ErrChunkEncoding, b.chunks, n, MaxChunkSize)
		}
	}
	return int64(n), sig, nil
}

// finish reads the trailing headers after the final chunk and the blank
// line that ends the body, and checks the trailer signature, the decoded
// length and the trailing checksum, in that order.
func (b *chunkedBody) finish() error {
	var canonical strings.Builder
	var trailerSig []byte
	var checksum string
	seen := false
	for lines := 0; ; lines++ {
		line, err := b.line()
		if err != nil {
			return err
		}
		if line == "" {
			break
		}
		if !b.trailers || lines == maxTrailerLines {
			return fmt.Errorf("%w: unexpected trailing header line", ErrChunkEncoding)
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return fmt.Errorf("%w: trailing header line without ':'", ErrChunkEncoding)
		}
		name, value = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)
		switch {
		case trailerSig != nil:
			return fmt.Errorf("%w: trailing header after x-amz-trailer-signature", ErrChunkEncoding)
		case name == trailerSigName:
			if b.key == nil {
				return fmt.Errorf("%w: x-amz-trailer-signature in an unsigned body", ErrChunkEncoding)
			}
			if trailerSig, err = hex.DecodeString(value); err != nil || len(trailerSig) != sha256.Size {
				return fmt.Errorf("%w: x-amz-trailer-signature must be 64 hex digits", ErrChunkEncoding)
			}
		case name == b.trailerName && !seen:
			seen, checksum = true, value
			canonical.WriteString(name + ":" + value + "\n")
		default:
			return fmt.Errorf("%w: trailing header not named by x-amz-trailer, or repeated", ErrChunkEncoding)
		}
	}
	if b.key != nil && b.trailers {
		if trailerSig == nil {
			return fmt.Errorf("%w: no x-amz-trailer-signature", ErrChunkSignature)
		}
		if !hmac.Equal(b.key.trailerSignature(b.prev, canonical.String()), trailerSig) {
			return fmt.Errorf("%w: trailing headers", ErrChunkSignature)
		}
	}
	if b.trailerName != "" && !seen {
		return fmt.Errorf("%w: no trailing %s, which x-amz-trailer names", ErrChunkEncoding, b.trailerName)
	}
	if b.declared >= 0 && b.decoded != b.declared {
		return fmt.Errorf("%w: the body is shorter than x-amz-decoded-content-length", ErrIncompleteBody)
	}
	if seen {
		// Re-encoding rejects what the decoder tolerates: embedded CR
		// or LF, and non-zero padding bits.
		want, err := base64.StdEncoding.DecodeString(checksum)
		if err != nil || len(want) != b.sum.Size() || base64.StdEncoding.EncodeToString(want) != checksum {
			return fmt.Errorf("%w: %s is not a base64 checksum of the right length", ErrChunkEncoding, b.trailerName)
		}
		if !bytes.Equal(b.sum.Sum(nil), want) {
			return fmt.Errorf("%w: %s", ErrChecksum, b.trailerName)
		}
	}
	// Bytes after the end are covered by no signature or checksum.
	switch _, err := b.r.ReadByte(); {
	case err == nil:
		return fmt.Errorf("%w: data after the end of the aws-chunked body", ErrChunkEncoding)
	case err != io.EOF:
		return err
	}
	return io.EOF
}

// line reads a CRLF-terminated line and returns it without the CRLF.
func (b *chunkedBody) line() (string, error) {
	s, err := b.r.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return "", fmt.Errorf("%w: line longer than %d bytes", ErrChunkEncoding, maxChunkLine)
	case err != nil:
		return "", incomplete(err)
	case len(s) < 2 || s[len(s)-2] != '\r':
		return "", fmt.Errorf("%w: line not ended by CRLF", ErrChunkEncoding)
	}
	return string(s[:len(s)-2]), nil
}

// crlf reads the CRLF that ends a chunk's data.
func (b *chunkedBody) crlf() error {
	var two [2]byte
	if _, err := io.ReadFull(b.r, two[:]); err != nil {
		return incomplete(err)
	}
	if two != [2]byte{'\r', '\n'} {
		return fmt.Errorf("%w: chunk %d: data not followed by CRLF (wrong size?)", ErrChunkEncoding, b.chunks)
	}
	return nil
}

// incomplete turns the end of the body before the end of the encoding into
// ErrIncompleteBody (keeping io.ErrUnexpectedEOF, which Go's server
// returns for a body shorter than its Content-Length, matchable); other
// read errors pass through.
func incomplete(err error) error {
	switch {
	case err == io.EOF:
		return fmt.Errorf("%w: the body ended before the end of its aws-chunked encoding", ErrIncompleteBody)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %w", ErrIncompleteBody, err)
	}
	return err
}
