package main_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/internal/testnode"
)

// A body in S3 that was damaged, or cut short, is never served as the
// object: a read that must fetch it is aborted before its end (the client
// sees a broken response, never a whole wrong body) or refused, and the
// node keeps no copy of it.
func TestDamagedRemoteBodyNeverServed(t *testing.T) {
	n, srv, bucket := s3Node(t)
	ctx := context.Background()
	body := strings.Repeat("good bytes ", 100000) // 1.1 MB
	for _, damage := range []struct {
		name string
		edit func([]byte) []byte
	}{
		{"flipped byte", func(b []byte) []byte { b[len(b)/2] ^= 1; return b }},
		{"cut short", func(b []byte) []byte { return b[:len(b)/2] }},
	} {
		t.Run(damage.name, func(t *testing.T) {
			id := ulid.Make().String()
			mustPut(t, n, id, 1, "data.bin", body)
			key := "objects/" + id
			head, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				t.Fatal(err)
			}
			bad := damage.edit([]byte(body))
			if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
				Body: bytes.NewReader(bad), Metadata: head.Metadata}); err != nil {
				t.Fatal(err)
			}
			// The node's own copy goes; the next read must fetch.
			if resp, b, _ := n.Do(testnode.Request{Method: "POST", Path: "/api/v1/invalidate/" + id,
				Header: map[string]string{"X-Meta-Local": "true"}}); resp.StatusCode != 200 {
				t.Fatalf("invalidate: %d %s", resp.StatusCode, b)
			}
			resp, err := http.Get(n.URL + "/api/v1/get/" + id)
			if err == nil {
				got, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 && rerr == nil {
					t.Fatalf("served %d bytes as a whole object (right bytes: %v)", len(got), string(got) == body)
				}
				t.Logf("status %d, read error %v after %d bytes", resp.StatusCode, rerr, len(got))
			}
			if _, m := metaOn(t, n, id); m["is_local"] == true {
				t.Error("the node kept the damaged body")
			}
		})
	}
}

// A peer's damaged copy is never served as the object either: a node
// reading a level-0 body from its holder, whose copy rotted on disk,
// aborts the answer and keeps nothing.
func TestDamagedPeerBodyNeverServed(t *testing.T) {
	remote := newRemote(t)
	a := clusterNode(t, remote)
	b := clusterNode(t, remote, a)
	eventually(t, "a and b joined", func() bool { return aliveCount(t, a) == 2 && aliveCount(t, b) == 2 })
	id := ulid.Make().String()
	body := strings.Repeat("only on a ", 50000)
	mustPut(t, a, id, 0, "sole.bin", body)
	eventually(t, "b knows it", func() bool { s, _ := metaOn(t, b, id); return s == 200 })
	// Rot one byte of a's copy on disk (same size: only the checksum can
	// tell).
	rotFile(t, bodyFiles(t, a)[id])
	resp, err := http.Get(b.URL + "/api/v1/get/" + id)
	if err == nil {
		got, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && rerr == nil {
			t.Fatalf("b served %d bytes of a rotten copy as a whole object", len(got))
		}
		t.Logf("status %d, read error %v after %d bytes", resp.StatusCode, rerr, len(got))
	}
	if _, m := metaOn(t, b, id); m["is_local"] == true {
		t.Error("b kept the rotten copy")
	}
}

// Bit rot under load: while readers GET a node's objects thousands of
// times, bytes of its body files flip at random (headers, data and
// checksums alike). No read ever yields a damaged byte: a read either
// completes with the object's exact bytes or is cut short after sound
// ones; and the node heals every copy (from S3, or a peer for level 2)
// on the read that finds the damage, so once the rot stops every object
// reads whole from local disk again.
func TestBitRotUnderLoad(t *testing.T) {
	remote := newRemote(t)
	a := clusterNode(t, remote)
	b := clusterNode(t, remote, a)
	eventually(t, "a and b joined", func() bool { return aliveCount(t, a) == 2 && aliveCount(t, b) == 2 })
	bodies := map[string]string{}
	var ids []string
	for i, size := range []int{100, 1 << 10, 70 << 10, 200 << 10, 600 << 10, 1 << 20} {
		for level := 1; level <= 2; level++ {
			id := ulid.Make().String()
			body := strings.Repeat(fmt.Sprintf("%02d-%d ", i, level), size/5+1)[:size]
			mustPut(t, a, id, level, "rot.bin", body)
			bodies[id] = body
			ids = append(ids, id)
		}
	}

	ctx, stop := context.WithTimeout(context.Background(), 8*time.Second)
	defer stop()
	var flips atomic.Int64
	rotter := make(chan struct{})
	go func() {
		defer close(rotter)
		rng := rand.New(rand.NewPCG(1, 2))
		for ctx.Err() == nil {
			for _, path := range bodyFiles(t, a) {
				if rng.IntN(3) == 0 && flipAt(path, rng) {
					flips.Add(1)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	var gets, whole, cut, corrupt atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ctx.Err() == nil; i++ {
				id := ids[i%len(ids)]
				resp, err := http.Get(a.URL + "/api/v1/get/" + id)
				if err != nil {
					continue
				}
				got, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				gets.Add(1)
				switch want := bodies[id]; {
				case resp.StatusCode != 200:
				case !strings.HasPrefix(want, string(got)):
					corrupt.Add(1)
				case rerr == nil && len(got) == len(want):
					whole.Add(1)
				default:
					cut.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	<-rotter
	st := statsOf(t, a)
	t.Logf("%d GETs while %d bytes flipped: %d whole, %d cut short, %d with damaged bytes; read_damaged %d, repairs %d",
		gets.Load(), flips.Load(), whole.Load(), cut.Load(), corrupt.Load(), st.Traffic.ReadDamaged, st.Traffic.Repairs)
	if corrupt.Load() > 0 {
		t.Fatalf("%d reads returned damaged bytes", corrupt.Load())
	}
	if gets.Load() < 1000 || flips.Load() == 0 || st.Traffic.ReadDamaged == 0 {
		t.Fatalf("the test did not exercise the damage: %d GETs, %d flips, %d damaged reads", gets.Load(), flips.Load(), st.Traffic.ReadDamaged)
	}
	// Healed: every object reads whole again, from a's own disk at last.
	for _, id := range ids {
		// The first read may still meet the last flips and be cut short.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			resp, err := http.Get(a.URL + "/api/v1/get/" + id)
			if err != nil {
				t.Fatal(err)
			}
			got, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && rerr == nil && string(got) == bodies[id] && resp.Header.Get("X-Meta-Source") == "local" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not healed within 30s: last read %d, %d of %d bytes, %v, headers %v\n%s",
					id, resp.StatusCode, len(got), len(bodies[id]), rerr, resp.Header, a.LogTail())
			}
		}
	}
}

// flipAt flips one random bit of the file at path in place, as bit rot
// would, keeping its size. It reports whether it did.
func flipAt(path string, rng *rand.Rand) bool {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return false // renamed or removed meanwhile
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return false
	}
	off := rng.Int64N(st.Size())
	var c [1]byte
	if _, err := f.ReadAt(c[:], off); err != nil {
		return false
	}
	c[0] ^= 1 << rng.IntN(8)
	_, err = f.WriteAt(c[:], off)
	return err == nil
}
