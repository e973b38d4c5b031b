// Package seal encrypts object bodies at rest on local disk.
//
// A sealed body is split into fixed-size segments, each sealed on its own
// with AES-256-GCM, in the STREAM construction of Hoang, Reyhanitabar,
// Rogaway and Vizár ("Online Authenticated-Encryption and its Nonce-Reuse
// Misuse-Resistance", CRYPTO 2015), as in age's payload and Tink's streaming
// AEAD. Segments are independent, so a range read opens only the segments it
// touches (Reader implements io.ReaderAt and io.ReadSeeker and can be handed
// to http.ServeContent), and a body fetched as parallel ranged parts can be
// sealed as the parts arrive (Writer.WriteAt). Each segment's nonce carries
// its index and whether it is the last one, and the per-file key commits to
// the file's header and to a caller-supplied binding (the object's
// identity), so truncation (at a segment boundary too), extension,
// reordering, splicing segments of another file and moving a file to
// another object's name all fail authentication. Reads then fail with an
// error matching ErrCorrupt; they never return unauthenticated bytes.
//
// Keys are held in a Keyring by 32-bit ID. The primary key seals new
// bodies; every key in the ring opens the bodies sealed with it, so a new
// key can be rolled in while older bodies stay readable. A body records the
// ID of the key that sealed it (Reader.KeyID, or Inspect without the key),
// so a scrub can find the bodies sealed with an old key and reseal them.
// See ParseKeyFile for the key file format and the rotation procedure.
//
// # Use
//
// The binding should name the object as precisely as is known when the
// body starts being written: the object's ID at least, and its version too
// if objects are overwritten in place, since a body sealed for an older
// version with the same binding would otherwise open in its stead.
//
// A body of known size fetched as parallel parts is written through one
// Writer from NewWriterSize, each part through WriteAt (or
// io.NewOffsetWriter) from its own goroutine, with part boundaries at
// multiples of the segment size. Readers may follow it while it is being
// written: OpenPartial, on a separate handle to the same file, reads the
// segments already sealed, such as the prefix Writer.Sealed reports. Once
// the body is complete and synced, Open it: Open also checks its length.
//
// # Format, version 1
//
// All integers are big-endian. A sealed file is a 48-byte header followed
// by N ≥ 1 sealed segments:
//
//	offset  size  field
//	0       7     magic "OBJSEAL"
//	7       1     version, 1
//	8       4     key ID: the master key's ID in the keyring
//	12      4     segment size S: a power of two in [MinSegmentSize, MaxSegmentSize]
//	16      32    salt: random, fresh for every file
//	48            segment 0, segment 1, ..., segment N-1
//
// A body of P plaintext bytes has N = max(1, ceil(P/S)) segments. Segment i
// holds plaintext bytes [i·S, min((i+1)·S, P)): every segment but the last
// holds exactly S bytes, the last holds 1..S bytes, or 0 bytes when P = 0
// (so a file cut down to its header still fails). Sealed segment i is the
// AES-256-GCM ciphertext of its plaintext followed by the 16-byte tag, and
// starts at file offset 48 + i·(S+16). The file is therefore
// 48 + P + 16·N bytes long (SealedSize), and P is derived from the file's
// length: a length no P maps to is ErrCorrupt.
//
// The per-file key is
//
//	K = HKDF-SHA256(secret = master key, salt = header salt,
//	                info = "objstore seal v1" || header (48 bytes) || binding, length 32)
//
// so K differs for every file (fresh salt: nonces never repeat across
// files under one master key), and any change to the header or to the
// binding yields another key. Segment i is sealed under K with the 12-byte
// nonce
//
//	nonce = 0x00 0x00 0x00 || uint64(i) || final
//
// where final is 0x01 for segment N-1 and 0x00 for the others, and with
// empty additional data (the header and the binding are already bound by
// K).
//
// A reader must accept only version 1 files laid out as above; any other
// version is reported as ErrUnsupportedVersion, never as ErrCorrupt, so a
// scrub running an older build does not discard bodies sealed by a newer
// one. A change to any of the above needs a new version number.
//
// # Checksummed bodies
//
// A body kept in the clear is written in the same format through the
// Unencrypted keyring, so that its reads are checked just as a sealed
// body's are. Its header has the magic "OBJSUMS" in place of "OBJSEAL"
// and key ID 0; its segments hold their plaintext as is, each followed by
// a 16-byte tag whose first 4 bytes are, big-endian,
//
//	CRC-32C("objstore sums v1" || header (48 bytes) || binding || nonce || plaintext)
//
// (nonce as above) and whose other 12 bytes are zero. The lengths, the
// segment layout and the versioning are a sealed file's. The checksum
// catches accidental damage (bit rot, a torn or truncated write, a file
// under the wrong name), not deliberate tampering: that needs a key.
//
// # Cost
//
// With the default 64 KiB segments a body grows by 48 bytes plus 16 bytes
// per segment (0.025%). Opening a body derives its key and authenticates
// its last segment, so that Size is trustworthy before any byte is served.
// Buffers are pooled: sealing and opening do not allocate per segment, and
// no more than about one segment per concurrent writer or reader is held in
// memory.
package seal
