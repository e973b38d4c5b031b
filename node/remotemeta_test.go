package node

import (
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
)

// A remote object's metadata is read from a bucket others may write to:
// any values decode to an entry or an error, never a panic, and what
// decodes from objstore's own format passes or fails checkEntry cleanly.
func FuzzEntryFromRemote(f *testing.F) {
	e := journal.Entry{ID: ulid.Make(), Version: journal.Version{Time: journal.Timestamp{Wall: time.Now().UnixNano()}, Node: ulid.Make()},
		Name: "a.txt", Level: journal.LevelRemote, UserMeta: map[string]string{"k": "v"}, Sum: [32]byte{9}}
	m := remoteMeta(e, true)
	f.Add(m[metaFormat], m[metaName], m[metaLevel], m[metaVersion], m[metaSHA256], m[metaUserMeta], int64(10))
	f.Add("1", "", "9", "1.2@x", "zz", "{", int64(-1))
	env := newEnv(f)
	f.Fuzz(func(t *testing.T, format, name, level, version, sum, userMeta string, size int64) {
		info := storage.ObjectInfo{Size: size, ModTime: time.Unix(0, size), Meta: map[string]string{
			metaFormat: format, metaName: name, metaLevel: level, metaVersion: version, metaSHA256: sum, metaUserMeta: userMeta}}
		got, err := entryFromRemote(e.ID, info)
		if err != nil || got.Version.Node == (ulid.ULID{}) {
			return
		}
		env.node.checkEntry(got) // must not panic
	})
}
