package deploy_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// promQuery asks the compose cluster's Prometheus for expr now and returns
// the result's series, or the error Prometheus gave.
func (c *cluster) promQuery(expr string) ([]json.RawMessage, error) {
	resp, err := client.Get("http://" + c.prometheus + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: %w", resp.Status, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", resp.Status, r.Error)
	}
	return r.Data.Result, nil
}

// Prometheus in the compose file scrapes every node, and every query of the
// Grafana dashboard runs on what it scraped and names only metrics the
// nodes export.
func TestPrometheusScrapesEveryNode(t *testing.T) {
	c := up(t)
	// Traffic, so that the rates have something to show.
	for range 5 {
		id, code, msg := c.put(1, "scraped")
		if code != http.StatusOK {
			t.Fatalf("put: %d %s", code, msg)
		}
		if code, _ := c.get(id); code != http.StatusOK {
			t.Fatalf("get: %d", code)
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		up, err := c.promQuery(`up{job="objstore"} == 1`)
		hits, err2 := c.promQuery(`objstore_hits_total`)
		if err == nil && err2 == nil && len(up) == 3 && len(hits) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus does not scrape three nodes: up %d (%v), hits series %d (%v)", len(up), err, len(hits), err2)
		}
		time.Sleep(time.Second)
	}

	names, err := c.promQuery(`count by (__name__) ({__name__=~"objstore_.+"})`)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, n := range names {
		var s struct {
			Metric map[string]string `json:"metric"`
		}
		json.Unmarshal(n, &s)
		have[s.Metric["__name__"]] = true
	}
	raw, err := os.ReadFile("grafana/objstore.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	metric := regexp.MustCompile(`objstore_[a-z0-9_]+`)
	queries := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			queries++
			if _, err := c.promQuery(tg.Expr); err != nil {
				t.Errorf("panel %q: %s: %v", p.Title, tg.Expr, err)
			}
			for _, m := range metric.FindAllString(tg.Expr, -1) {
				if !have[m] && !have[strings.TrimSuffix(m, "_bucket")+"_bucket"] {
					t.Errorf("panel %q names %s, which no node exports", p.Title, m)
				}
			}
		}
	}
	if queries < 20 {
		t.Errorf("the dashboard has %d queries", queries)
	}
}
