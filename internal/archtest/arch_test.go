// Package archtest holds the test that keeps objstore's dependencies
// pointing the way docs/design.md says they do.
package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/objstore/objstore"

// allowed lists, for each package, the packages of objstore it may import
// (outside tests). storage, journal, auth and cache import nothing of
// objstore's (storage its own seal); cluster uses journal's types; node ties
// storage, journal, cluster and cache together; api sees node, cluster,
// journal and auth; s3api sees node, journal, auth and api (its limits);
// metrics reads node's stats, and api and s3api record into it; cmd wires
// everything.
var allowed = map[string][]string{
	"auth":               {},
	"cache":              {},
	"journal":            {},
	"storage/seal":       {},
	"storage":            {"storage/seal"},
	"storage/s3remote":   {"storage"},
	"storage/remotetest": {"storage"},
	"cluster":            {"journal"},
	"node":               {"cache", "cluster", "journal", "storage", "storage/seal"},
	"metrics":            {"node"},
	"client":             {},
	"api":                {"auth", "cluster", "journal", "metrics", "node"},
	"s3api":              {"api", "auth", "journal", "metrics", "node"},
	"cmd/objstore":       {"api", "auth", "cache", "client", "cluster", "journal", "metrics", "node", "s3api", "storage", "storage/s3remote", "storage/seal"},
}

func TestImportDirections(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := map[string]bool{}
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		if strings.HasPrefix(name, "internal/") || name == "deploy" {
			continue // test harnesses and tests only
		}
		may, ok := allowed[name]
		if !ok {
			t.Errorf("package %s is not in the dependency rules (docs/design.md): add it", name)
			continue
		}
		seen[name] = true
		for _, imp := range p.Imports {
			dep, ours := strings.CutPrefix(imp, module+"/")
			if !ours {
				continue
			}
			ok := false
			for _, m := range may {
				ok = ok || m == dep
			}
			if !ok {
				t.Errorf("%s imports %s, which the dependency rules do not allow", name, dep)
			}
		}
	}
	for name := range allowed {
		if !seen[name] {
			t.Errorf("rule for %s, which no longer exists", name)
		}
	}
}
