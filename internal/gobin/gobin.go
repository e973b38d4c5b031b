// Package gobin provides the pinned Go programs the tests run (MinIO, mc):
// an existing binary named by an environment variable, or one built with
// go install into the user's cache directory, once per version even when
// several test processes ask at the same time.
package gobin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Tool is a pinned Go program.
type Tool struct {
	Name    string // as shown in messages: "MinIO"
	Module  string // the package go install builds
	Version string // the pinned module version
	Binary  string // the built file's name: "minio"
	// Env names a variable that, when set, gives the path of a binary to
	// use instead of building one.
	Env string
	// Check runs the binary in a way that fails unless it works (its
	// version command); it catches a truncated or foreign file.
	Check func(bin string) error
	// BuildTime says how long a build takes, for the message shown while
	// it runs: "several minutes".
	BuildTime string
}

// Dir returns the directory the tool's build is kept in.
func (tl Tool) Dir() (string, error) {
	c, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(c, "objstore", tl.Binary+"-"+tl.Version), nil
}

// InstallHint tells a person how to build the tool by hand.
func (tl Tool) InstallHint() string {
	dir, err := tl.Dir()
	if err != nil {
		dir = "<dir>"
	}
	return fmt.Sprintf("To install %s: CGO_ENABLED=0 GOBIN=%s go install %s@%s\n(or set %s to a %s binary)",
		tl.Name, dir, tl.Module, tl.Version, tl.Env, tl.Name)
}

// Path returns the path of a working binary: $Env's when set, else the
// cached build, building it first if there is none. The build is bounded
// by t's deadline.
func (tl Tool) Path(t testing.TB) (string, error) {
	if p := os.Getenv(tl.Env); p != "" {
		if err := tl.Check(p); err != nil {
			return "", fmt.Errorf("$%s=%s: %w", tl.Env, p, err)
		}
		return p, nil
	}
	dir, err := tl.Dir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, tl.Binary)
	if tl.Check(bin) == nil {
		return bin, nil
	}
	if err := tl.install(t, dir, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// install builds the tool into dir while holding an exclusive lock on a
// file there, so that parallel test processes build it once.
func (tl Tool) install(t testing.TB, dir, bin string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ctx := context.Background()
	if dl, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if d, ok := dl.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, d.Add(-30*time.Second))
			defer cancel()
		}
	}
	lock, err := os.OpenFile(filepath.Join(dir, "install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close() // closing releases the lock
	for waited := 0; ; waited++ {
		err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("lock %s: %w", lock.Name(), err)
		}
		if waited%30 == 0 {
			t.Logf("gobin: another process is building %s into %s; waiting for it", tl.Name, dir)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the %s build lock: %w", tl.Name, ctx.Err())
		case <-time.After(time.Second):
		}
	}
	if tl.Check(bin) == nil {
		return nil // built by the process that held the lock
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("building %s needs the go tool: %w", tl.Name, err)
	}
	_ = os.Remove(bin) // a broken leftover; go install replaces it anyway
	t.Logf("gobin: building %s %s into %s with go install; this takes %s (set $%s to use an existing binary)",
		tl.Name, tl.Version, dir, tl.BuildTime, tl.Env)
	start := time.Now()
	cmd := exec.CommandContext(ctx, goTool, "install", tl.Module+"@"+tl.Version)
	cmd.Dir = dir // outside any module, so only the pinned version counts
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOBIN="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go install %s@%s: %w\n%s", tl.Module, tl.Version, err, out)
	}
	if err := tl.Check(bin); err != nil {
		return err
	}
	t.Logf("gobin: built %s in %v", tl.Name, time.Since(start).Round(time.Second))
	return nil
}
