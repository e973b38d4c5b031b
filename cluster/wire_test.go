package cluster

import (
	"bytes"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/journal"
)

func TestWireRoundTrips(t *testing.T) {
	node := ulid.Make()
	entries := []journal.Entry{
		{ID: ulid.Make(), Version: journal.Version{Time: journal.Timestamp{Wall: 5, Logical: 2}, Node: node}, Origin: node,
			Name: "a.txt", Size: 3, Level: journal.LevelFull, UserMeta: map[string]string{"k": "v"}},
		{ID: ulid.Make(), Version: journal.Version{Time: journal.Timestamp{Wall: 9}, Node: node}, Deleted: true},
	}
	got, err := DecodeEntries(bytes.NewReader(EncodeEntries(entries)))
	if err != nil || !reflect.DeepEqual(got, entries) {
		t.Errorf("entries: %v %+v", err, got)
	}
	level, nodes, err := DecodeTreeRequest(bytes.NewReader(EncodeTreeRequest(3, []uint32{0, 7, 4095})))
	if err != nil || level != 3 || !reflect.DeepEqual(nodes, []uint32{0, 7, 4095}) {
		t.Errorf("tree request: %v %d %v", err, level, nodes)
	}
	tn := []journal.TreeNode{{Digest: journal.Digest{1, 2}, Count: 7}, {Count: 1 << 20}}
	if got, err := DecodeTreeNodes(bytes.NewReader(EncodeTreeNodes(tn))); err != nil || !reflect.DeepEqual(got, tn) {
		t.Errorf("tree nodes: %v %v", err, got)
	}
	leaves := []uint16{0, 1, 65535}
	if got, err := DecodeLeaves(bytes.NewReader(EncodeLeaves(leaves))); err != nil || !reflect.DeepEqual(got, leaves) {
		t.Errorf("leaves: %v %v", err, got)
	}
	sums := []journal.Summary{{ID: ulid.Make(), Version: entries[0].Version}}
	if got, err := DecodeSummaries(bytes.NewReader(EncodeSummaries(sums))); err != nil || !reflect.DeepEqual(got, sums) {
		t.Errorf("summaries: %v %v", err, got)
	}
	ids := []ulid.ULID{ulid.Make(), ulid.Make()}
	if got, err := DecodeIDs(bytes.NewReader(EncodeIDs(ids))); err != nil || !reflect.DeepEqual(got, ids) {
		t.Errorf("ids: %v %v", err, got)
	}
}

// Every truncation of every message is refused with ErrBadMessage, never
// a panic or a short result taken as whole.
func TestWireRefusesDamage(t *testing.T) {
	e := journal.Entry{ID: ulid.Make(), Version: journal.Version{Time: journal.Timestamp{Wall: 1}, Node: ulid.Make()}, Name: "x"}
	msgs := map[string]struct {
		b      []byte
		decode func([]byte) error
	}{
		"entries":   {EncodeEntries([]journal.Entry{e}), func(b []byte) error { _, err := DecodeEntries(bytes.NewReader(b)); return err }},
		"tree":      {EncodeTreeNodes([]journal.TreeNode{{Count: 1}}), func(b []byte) error { _, err := DecodeTreeNodes(bytes.NewReader(b)); return err }},
		"leaves":    {EncodeLeaves([]uint16{1, 2}), func(b []byte) error { _, err := DecodeLeaves(bytes.NewReader(b)); return err }},
		"summaries": {EncodeSummaries([]journal.Summary{{ID: e.ID}}), func(b []byte) error { _, err := DecodeSummaries(bytes.NewReader(b)); return err }},
		"ids":       {EncodeIDs([]ulid.ULID{e.ID}), func(b []byte) error { _, err := DecodeIDs(bytes.NewReader(b)); return err }},
	}
	for name, m := range msgs {
		for i := range m.b {
			if err := m.decode(m.b[:i]); !errors.Is(err, ErrBadMessage) {
				t.Errorf("%s truncated to %d bytes: %v, want ErrBadMessage", name, i, err)
			}
		}
		wrongKind := append([]byte{99}, m.b[1:]...)
		if err := m.decode(wrongKind); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s with another kind: %v", name, err)
		}
	}
	// A count beyond the limit is refused before anything is allocated.
	huge := []byte{msgIDs, 0xff, 0xff, 0xff, 0xff, 0x0f}
	if _, err := DecodeIDs(bytes.NewReader(huge)); !errors.Is(err, ErrBadMessage) {
		t.Errorf("huge count: %v", err)
	}
}

func FuzzDecodeEntries(f *testing.F) {
	f.Add(EncodeEntries([]journal.Entry{{ID: ulid.Make(), Version: journal.Version{Time: journal.Timestamp{Wall: 1}}, Name: "n"}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := DecodeEntries(bytes.NewReader(b))
		if err != nil {
			return
		}
		again, err := DecodeEntries(bytes.NewReader(EncodeEntries(entries)))
		if err != nil || !reflect.DeepEqual(again, entries) {
			t.Fatalf("re-encoding changed entries: %v", err)
		}
	})
}

// The entry header carries exactly one entry, and no more than its bound.
func TestEntryHeader(t *testing.T) {
	e := journal.Entry{ID: ulid.Make(), Version: journal.Version{Time: journal.Timestamp{Wall: 7}, Node: ulid.Make()},
		Origin: ulid.Make(), Level: journal.LevelRemote, Size: 3, Bucket: "photos", Key: "a b/ünï.jpg", ETag: `"abc"`,
		ContentType: "image/jpeg", LastModified: time.Unix(1700000000, 0).UTC()}
	got, err := DecodeEntryHeader(EncodeEntryHeader(e))
	if err != nil || !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	two := base64.RawURLEncoding.EncodeToString(EncodeEntries([]journal.Entry{e, {ID: ulid.Make(), Version: e.Version, Deleted: true}}))
	for name, h := range map[string]string{"two entries": two, "empty": "", "not base64": "***",
		"too long": strings.Repeat("A", maxEntryHeader+1)} {
		if _, err := DecodeEntryHeader(h); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Repeated items are dropped, so one request cannot multiply its work by
// naming the same thing many times; requests over their own bounds are
// refused.
func TestWireDropsDuplicatesAndBoundsRequests(t *testing.T) {
	id := ulid.Make()
	e := journal.Entry{ID: id, Version: journal.Version{Time: journal.Timestamp{Wall: 1}, Node: ulid.Make()}, Deleted: true}
	got, err := DecodeEntries(bytes.NewReader(EncodeEntries([]journal.Entry{e, e, e})))
	if err != nil || len(got) != 1 {
		t.Errorf("entries: %d, %v; want 1", len(got), err)
	}
	if ids, err := DecodeIDs(bytes.NewReader(EncodeIDs([]ulid.ULID{id, id}))); err != nil || len(ids) != 1 {
		t.Errorf("ids: %d, %v; want 1", len(ids), err)
	}
	if ls, err := DecodeLeaves(bytes.NewReader(EncodeLeaves([]uint16{3, 3, 4}))); err != nil || !reflect.DeepEqual(ls, []uint16{3, 4}) {
		t.Errorf("leaves: %v, %v", ls, err)
	}
	if _, ns, err := DecodeTreeRequest(bytes.NewReader(EncodeTreeRequest(0, make([]uint32, 1000)))); err != nil || len(ns) != 1 {
		t.Errorf("tree request: %d nodes, %v; want 1", len(ns), err)
	}
	if _, _, err := DecodeTreeRequest(bytes.NewReader(EncodeTreeRequest(journal.TreeDepth, []uint32{0}))); !errors.Is(err, ErrBadMessage) {
		t.Errorf("tree request below the leaves: %v", err)
	}
	if _, _, err := DecodeTreeRequest(bytes.NewReader(EncodeTreeRequest(1, make([]uint32, maxTreeNodes+1)))); !errors.Is(err, ErrBadMessage) {
		t.Errorf("tree request of %d nodes: %v", maxTreeNodes+1, err)
	}
	if _, err := DecodeIDs(bytes.NewReader(EncodeIDs(make([]ulid.ULID, maxIDs+1)))); !errors.Is(err, ErrBadMessage) {
		t.Errorf("ids request of %d: %v", maxIDs+1, err)
	}
	if _, err := DecodeLeaves(bytes.NewReader(EncodeLeaves(make([]uint16, maxLeaves+1)))); !errors.Is(err, ErrBadMessage) {
		t.Errorf("leaves request of %d: %v", maxLeaves+1, err)
	}
}

// Every request and answer decoder of the private API takes any bytes a
// peer sends without panicking or allocating for items that never arrive,
// and what it accepts re-encodes to itself.
func FuzzDecodeMessages(f *testing.F) {
	id := ulid.Make()
	f.Add(EncodeTreeRequest(2, []uint32{0, 5, 255}))
	f.Add(EncodeLeaves([]uint16{1, 2, 65535}))
	f.Add(EncodeIDs([]ulid.ULID{id}))
	f.Add(EncodeSummaries([]journal.Summary{{ID: id}}))
	f.Add(EncodeTreeNodes([]journal.TreeNode{{Count: 3}}))
	f.Add([]byte{msgIDs, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte(EncodeEntryHeader(journal.Entry{ID: id, Bucket: "b", Key: "k", Version: journal.Version{Time: journal.Timestamp{Wall: 1}}})))
	f.Fuzz(func(t *testing.T, b []byte) {
		if e, err := DecodeEntryHeader(string(b)); err == nil {
			if again, err := DecodeEntryHeader(EncodeEntryHeader(e)); err != nil || !reflect.DeepEqual(again, e) {
				t.Fatalf("entry header round trip: %v", err)
			}
		}
		if level, nodes, err := DecodeTreeRequest(bytes.NewReader(b)); err == nil {
			l2, n2, err := DecodeTreeRequest(bytes.NewReader(EncodeTreeRequest(level, nodes)))
			if err != nil || l2 != level || !reflect.DeepEqual(n2, nodes) {
				t.Fatalf("tree request round trip: %v", err)
			}
		}
		if leaves, err := DecodeLeaves(bytes.NewReader(b)); err == nil {
			if again, err := DecodeLeaves(bytes.NewReader(EncodeLeaves(leaves))); err != nil || !reflect.DeepEqual(again, leaves) {
				t.Fatalf("leaves round trip: %v", err)
			}
		}
		if ids, err := DecodeIDs(bytes.NewReader(b)); err == nil {
			if again, err := DecodeIDs(bytes.NewReader(EncodeIDs(ids))); err != nil || !reflect.DeepEqual(again, ids) {
				t.Fatalf("ids round trip: %v", err)
			}
		}
		if sums, err := DecodeSummaries(bytes.NewReader(b)); err == nil {
			if again, err := DecodeSummaries(bytes.NewReader(EncodeSummaries(sums))); err != nil || !reflect.DeepEqual(again, sums) {
				t.Fatalf("summaries round trip: %v", err)
			}
		}
		if nodes, err := DecodeTreeNodes(bytes.NewReader(b)); err == nil {
			if again, err := DecodeTreeNodes(bytes.NewReader(EncodeTreeNodes(nodes))); err != nil || !reflect.DeepEqual(again, nodes) {
				t.Fatalf("tree nodes round trip: %v", err)
			}
		}
	})
}

// Gossip metadata comes from any host that reaches the gossip port.
func FuzzDecodeGossipMeta(f *testing.F) {
	good, _ := encodeMeta(nodeMeta{ID: ulid.Make().String(), Tag: "t", Public: "1.2.3.4:1", Private: "1.2.3.4:2", Boot: "b"})
	f.Add(good)
	f.Add([]byte{0})
	f.Add([]byte{1, '{'})
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeMeta(b) // must not panic
	})
}
