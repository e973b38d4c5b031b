package cluster

import (
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

func TestZZMeasureLAN(t *testing.T) {
	if os.Getenv("MEASURE") == "" {
		t.Skip()
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, n := range []int{2, 3, 5} {
		for trial := 0; trial < 3; trial++ {
			var ms []*Membership
			for i := 0; i < n; i++ {
				var join []string
				if i > 0 {
					join = []string{ms[0].Self().GossipAddr}
				}
				m, err := Start(Config{NodeID: ulid.Make(), Tag: "m", BindAddr: "127.0.0.1:0", Join: join, Logger: log})
				if err != nil {
					t.Fatal(err)
				}
				ms = append(ms, m)
			}
			for len(ms[0].Peers()) != n-1 || len(ms[n-1].Peers()) != n-1 {
				time.Sleep(10 * time.Millisecond)
			}
			victim := ms[n-1]
			id := victim.Self().ID
			start := time.Now()
			victim.Close()
			var first, last time.Duration
			seen := map[int]bool{}
			for len(seen) < n-1 {
				for i := 0; i < n-1; i++ {
					if !seen[i] && stateOf(ms[i], id) == StateDead {
						seen[i] = true
						d := time.Since(start)
						if first == 0 {
							first = d
						}
						last = d
					}
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("LAN n=%d trial %d: killed node seen dead first after %v, by all after %v", n, trial, first.Round(100*time.Millisecond), last.Round(100*time.Millisecond))
			for _, m := range ms[:n-1] {
				m.Close()
			}
		}
	}
}
