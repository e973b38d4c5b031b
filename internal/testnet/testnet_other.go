//go:build !linux

package testnet

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
)

// errUnsupported is returned by every operation off Linux.
var errUnsupported = errors.New("testnet: network namespaces need Linux")

// Net is a private switch of test hosts. Off Linux it cannot be created.
type Net struct{}

// Host is a test host. Off Linux it cannot be created.
type Host struct{}

// New skips the test, because network namespaces need Linux; when the
// environment variable CI is non-empty it fails the test instead.
func New(t testing.TB) *Net {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(errUnsupported.Error() + " (CI is set, so this is a failure, not a skip)")
	}
	t.Skip(errUnsupported.Error())
	return nil
}

// GatewayIP is unreachable off Linux, where New never returns.
func (n *Net) GatewayIP() string { return "" }

// AddHost fails the test off Linux.
func (n *Net) AddHost(t testing.TB, name string) *Host {
	t.Helper()
	t.Fatal(errUnsupported.Error())
	return nil
}

// Name returns "" off Linux.
func (h *Host) Name() string { return "" }

// IP returns "" off Linux.
func (h *Host) IP() string { return "" }

// Namespace returns "" off Linux.
func (h *Host) Namespace() string { return "" }

// Command returns a command whose Start fails off Linux.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Err = errUnsupported
	return cmd
}

// Cut fails off Linux.
func (h *Host) Cut() error { return errUnsupported }

// Heal fails off Linux.
func (h *Host) Heal() error { return errUnsupported }
