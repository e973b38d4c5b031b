package main_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/oklog/ulid/v2"
)

// browser starts a headless chromium and returns a context that drives a
// tab of it, and the console errors, exceptions and browser log errors
// (CSP violations among them) seen so far.
func browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		need(t, "no chromium (Debian's package; make test installs it): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin),
		chromedp.NoSandbox, // root runs the tests
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1200, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancelAlloc)
	var mu sync.Mutex
	var problems []string
	messages := chromedp.Console(ctx) // subscribed now: nothing the page says is missed
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return // the tab closed
			}
			if m.IsException() || m.Type == chromedp.ConsoleError {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s (%s:%d)", m.Text, m.URL, m.Line+1))
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}

// The status page, in a real browser: it loads without a console error,
// shows every member of a three-node cluster, and its figures move with
// traffic.
func TestStatusPageInBrowser(t *testing.T) {
	_, ns := threeNodes(t)
	ctx, problems := browser(t)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	text := func(sel string) string {
		s, err := chromedp.Run(ctx, chromedp.TextContent(sel))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	waitFor := func(what, js string) {
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		for {
			if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js)); err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				body, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : document.documentElement.outerHTML`))
				t.Fatalf("page never showed %s; problems %v; the page (%v):\n%s", what, problems(), err, body)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(ns[0].URL+"/")); err != nil {
		t.Fatal(err)
	}
	waitFor("three members", `document.querySelectorAll("#members tbody tr").length === 3`)
	members := text("#members tbody")
	for _, n := range ns {
		if !strings.Contains(members, n.PublicAddr) {
			t.Errorf("member %s missing from the page:\n%s", n.PublicAddr, members)
		}
	}
	if got := text("#summary"); got != "3 alive" {
		t.Errorf("summary %q, want 3 alive", got)
	}
	before := text("#saved")

	// Traffic: objects written on one node, read on every node (local
	// and peer reads, all S3 requests saved).
	for i := range 5 {
		id := ulid.Make().String()
		mustPut(t, ns[0], id, 0, fmt.Sprintf("f%d.txt", i), "status page traffic")
		for _, n := range ns {
			for range 3 {
				if resp, _ := get(t, n, id, nil); resp.StatusCode != 200 {
					t.Fatalf("GET %s on %s: %d", id, n.PublicAddr, resp.StatusCode)
				}
			}
		}
	}
	waitFor("the reads", fmt.Sprintf(`document.getElementById("saved").textContent !== %q && document.getElementById("saved").textContent !== "0"`, before))
	if got := text("#ratio"); got != "100.0 %" {
		t.Errorf("share served without S3 %q, want 100.0 %%", got)
	}
	if bars, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#chart rect").length`)); err != nil || bars == 0 {
		t.Errorf("the chart has %d bars: %v", bars, err)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("the page logged problems:\n%s", strings.Join(p, "\n"))
	}
	if path := os.Getenv("OBJSTORE_SCREENSHOT"); path != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
