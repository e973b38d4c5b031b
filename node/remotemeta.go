package node

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
)

// Metadata stored with each object in the remote tier, so that a node that
// lost everything can rebuild the object's entry from the remote alone.
const (
	metaFormat   = "objstore-format"
	metaName     = "objstore-name"
	metaLevel    = "objstore-level"
	metaUserMeta = "objstore-user-meta"
	metaVersion  = "objstore-version"
	metaSHA256   = "objstore-sha256"

	remoteMetaFormat = "1"
)

// remoteMeta is what the remote tier keeps of e besides its body. The
// checksum is only known after the body has streamed, so it is absent from
// uploads made while the body streams; a fetch then recomputes it.
func remoteMeta(e journal.Entry, withSum bool) map[string]string {
	m := map[string]string{
		metaFormat:  remoteMetaFormat,
		metaName:    e.Name,
		metaLevel:   strconv.Itoa(int(e.Level)),
		metaVersion: formatVersion(e.Version),
	}
	if len(e.UserMeta) > 0 {
		b, _ := json.Marshal(e.UserMeta) // a map of strings always marshals
		m[metaUserMeta] = string(b)
	}
	if withSum {
		m[metaSHA256] = hex.EncodeToString(e.Sum[:])
	}
	return m
}

// entryFromRemote rebuilds an entry from a remote object's description. An
// object put into the bucket by other means (no objstore metadata) becomes a
// level-1 entry versioned by its modification time.
func entryFromRemote(id ulid.ULID, info storage.ObjectInfo) (journal.Entry, error) {
	e := journal.Entry{ID: id, Size: info.Size, Level: journal.LevelRemote}
	m := info.Meta
	if m[metaFormat] == "" {
		e.Version = journal.Version{Time: journal.Timestamp{Wall: info.ModTime.UnixNano()}}
		if e.Version.IsZero() {
			e.Version.Time.Logical = 1
		}
		return e, nil
	}
	if m[metaFormat] != remoteMetaFormat {
		return e, fmt.Errorf("remote object %s: metadata format %q is newer than this release", id, m[metaFormat])
	}
	e.Name = m[metaName]
	lvl, err := strconv.Atoi(m[metaLevel])
	if err != nil || !journal.Level(lvl).Valid() {
		return e, fmt.Errorf("remote object %s: bad level %q", id, m[metaLevel])
	}
	e.Level = max(journal.Level(lvl), journal.LevelRemote)
	if e.Version, err = parseVersion(m[metaVersion]); err != nil {
		return e, fmt.Errorf("remote object %s: %w", id, err)
	}
	e.Origin = e.Version.Node
	if s := m[metaSHA256]; s != "" {
		if b, err := hex.DecodeString(s); err != nil || len(b) != len(e.Sum) {
			return e, fmt.Errorf("remote object %s: bad checksum %q", id, s)
		} else {
			copy(e.Sum[:], b)
		}
	}
	if s := m[metaUserMeta]; s != "" {
		if err := json.Unmarshal([]byte(s), &e.UserMeta); err != nil {
			return e, fmt.Errorf("remote object %s: bad user metadata: %w", id, err)
		}
	}
	return e, nil
}

// formatVersion writes v as wall.logical@node, the form parseVersion reads.
func formatVersion(v journal.Version) string { return v.String() }

func parseVersion(s string) (journal.Version, error) {
	var v journal.Version
	ts, node, ok := strings.Cut(s, "@")
	wall, logical, ok2 := strings.Cut(ts, ".")
	if !ok || !ok2 {
		return v, fmt.Errorf("bad version %q", s)
	}
	w, err1 := strconv.ParseInt(wall, 10, 64)
	l, err2 := strconv.ParseUint(logical, 10, 32)
	n, err3 := ulid.ParseStrict(node)
	if err1 != nil || err2 != nil || err3 != nil {
		return v, fmt.Errorf("bad version %q", s)
	}
	v = journal.Version{Time: journal.Timestamp{Wall: w, Logical: uint32(l)}, Node: n}
	if v.IsZero() {
		return v, fmt.Errorf("bad version %q", s)
	}
	return v, nil
}
