package node

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestLogRingKeepsTheLastWarnings(t *testing.T) {
	var out strings.Builder
	ring := NewLogRing(slog.NewTextHandler(&out, nil))
	log := slog.New(ring).With("component", "test")
	log.Info("routine")
	for i := range maxLogEntries + 5 {
		log.Warn("trouble", "n", i)
	}
	log.Error("failure", "err", "boom")
	got := ring.Entries()
	if len(got) != maxLogEntries {
		t.Fatalf("kept %d entries, want %d", len(got), maxLogEntries)
	}
	last := got[len(got)-1]
	if last.Level != "ERROR" || last.Message != "failure" || last.Attrs != "component=test err=boom" {
		t.Errorf("last entry %+v", last)
	}
	if first := got[0]; first.Attrs != fmt.Sprintf("component=test n=%d", 6) {
		t.Errorf("first entry %+v: the oldest should have gone", first)
	}
	if !strings.Contains(out.String(), "msg=routine") || strings.Count(out.String(), "\n") != maxLogEntries+7 {
		t.Errorf("not every record reached the next handler:\n%s", out.String())
	}
	if !ring.Enabled(context.Background(), slog.LevelInfo) || ring.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("Enabled does not follow the next handler")
	}
}

// A peer's status is trimmed to what a node would send.
func TestStatusBound(t *testing.T) {
	s := Status{History: make([]Sample, 5000), Jobs: make([]PrewarmJob, 500), Errors: make([]LogEntry, 900)}
	s.Jobs[0].Errors = []string{strings.Repeat("x", 1<<20)}
	s.Errors[len(s.Errors)-1].Message = strings.Repeat("m", 1<<20)
	s.Jobs[0].Peers = make([]PrewarmJob, 100)
	s.bound()
	if len(s.History) != maxSamples+1 || len(s.Jobs) != maxStatusJobs || len(s.Errors) != maxLogEntries ||
		len(s.Jobs[0].Errors[0]) != maxText || s.Jobs[0].Peers != nil || len(s.Errors[len(s.Errors)-1].Message) != maxText {
		t.Errorf("bound left %d samples, %d jobs, %d errors, a job error of %d bytes, %d peers, a log message of %d bytes",
			len(s.History), len(s.Jobs), len(s.Errors), len(s.Jobs[0].Errors[0]), len(s.Jobs[0].Peers), len(s.Errors[len(s.Errors)-1].Message))
	}
}
