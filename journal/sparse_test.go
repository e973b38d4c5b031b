package journal

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

func TestSparseRecords(t *testing.T) {
	j, err := Open(Config{Path: filepath.Join(t.TempDir(), "j.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	id := ulid.Make()
	s := Sparse{Tag: "0123456789abcdef", Version: Version{Time: Timestamp{Wall: 5}, Node: ulid.Make()}, ETag: `"e"`,
		Size: 10<<20 + 1, PartSize: 1 << 20, Stored: time.Unix(100, 0).UTC()}
	if s.Parts() != 11 || s.PartLen(10) != 1 || s.PartLen(0) != 1<<20 {
		t.Fatalf("layout: %d parts, last %d", s.Parts(), s.PartLen(10))
	}
	err = j.Update(func(tx *Tx) error {
		if err := tx.PutSparse(id, s); err != nil {
			return err
		}
		if err := tx.PutSparsePart(id, 3, SparsePart{Size: 1 << 20}); err != nil {
			return err
		}
		if err := tx.PutSparsePart(id, 10, SparsePart{Size: 1}); err != nil {
			return err
		}
		if err := tx.PutSparsePart(id, 11, SparsePart{Size: 1}); err == nil {
			return errors.New("a part past the end was recorded")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, parts, err := j.Sparse(id)
	if err != nil || got != s || len(parts) != 2 || !j.HoldsParts(id) {
		t.Fatalf("read back: %+v %v %v", got, parts, err)
	}
	if st := j.Stats(); st.Sparse != 1 || st.SparseBytes != 1<<20+1 {
		t.Errorf("stats %+v", st)
	}
	// A copy begun again drops the parts of the one before.
	j.Update(func(tx *Tx) error { return tx.PutSparse(id, s) })
	if _, parts, _ := j.Sparse(id); len(parts) != 0 || j.HoldsParts(id) {
		t.Errorf("parts survived a new copy: %v", parts)
	}
	j.Update(func(tx *Tx) error { return tx.DeleteSparse(id) })
	if _, _, err := j.Sparse(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if st := j.Stats(); st.Sparse != 0 || st.SparseBytes != 0 {
		t.Errorf("stats after delete %+v", st)
	}
}

// Records read from disk never panic the decoder, and what decodes
// survives being written and read again unchanged.
func FuzzDecodeSparse(f *testing.F) {
	f.Add(encodeSparse(Sparse{Tag: "0123456789abcdef", ETag: "x", Size: 5, PartSize: 2}))
	f.Add(encodeSparsePart(SparsePart{Size: 3}))
	f.Fuzz(func(t *testing.T, b []byte) {
		id := ulid.ULID{}
		if s, err := decodeSparse(id, b); err == nil {
			if again, err := decodeSparse(id, encodeSparse(s)); err != nil || again != s {
				t.Fatalf("sparse record %x: %+v, then %+v, %v", b, s, again, err)
			}
		}
		if p, err := decodeSparsePart(id, b); err == nil {
			if again, err := decodeSparsePart(id, encodeSparsePart(p)); err != nil || again != p {
				t.Fatalf("part record %x: %+v, then %+v, %v", b, p, again, err)
			}
		}
	})
}
