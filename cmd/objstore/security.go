package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/objstore/objstore/api"
	"github.com/objstore/objstore/auth"
	"github.com/objstore/objstore/cluster"
	"github.com/objstore/objstore/storage/seal"
)

// security is what the configuration's security settings become: the
// private API's authentication, the listeners' TLS, and what SIGHUP reloads.
type security struct {
	auth       *cluster.Auth
	clients    api.Authenticator // nil: the public API is open
	bodyKeys   *seal.Keyring     // encryption at rest; nil: bodies in the clear
	setKeys    atomic.Pointer[func(*seal.Keyring)]
	privateTLS *tls.Config // nil: plain HTTP
	publicTLS  *tls.Config
	reloaders  []reloader
}

// reloader is something SIGHUP reads again from its files.
type reloader struct {
	name   string
	reload func() error
}

// keyringFile is where a node keeps its cluster keyring, rotations
// included, across restarts.
const keyringFile = "keyring.json"

func openSecurity(c config, log *slog.Logger) (*security, error) {
	s := &security{auth: &cluster.Auth{}}
	if c.clusterSecret != nil {
		if err := os.MkdirAll(c.StateDir, 0o750); err != nil {
			return nil, fmt.Errorf("state dir: %w", err)
		}
		kr, fromFile, err := cluster.OpenKeyring(filepath.Join(c.StateDir, keyringFile), c.clusterSecret)
		if err != nil {
			return nil, err
		}
		if fromFile {
			fp, _ := cluster.Fingerprint(c.clusterSecret)
			held := false
			for _, k := range kr.List() {
				held = held || k.ID == fp
			}
			if !held {
				log.Warn("the configured cluster secret is not in this node's keyring (it was rotated out); the keyring stands",
					"keyring", filepath.Join(c.StateDir, keyringFile))
			}
		}
		s.auth.Keyring = kr
		log.Info("cluster secret in use: gossip encrypted, node-to-node requests signed", "keys", kr.List())
	}
	if c.ClusterCA != "" {
		certs, err := cluster.LoadCerts(c.ClusterCA, c.NodeCert, c.NodeKey)
		if err != nil {
			return nil, err
		}
		s.auth.TLS = certs
		s.privateTLS = certs.ServerConfig()
		s.reloaders = append(s.reloaders, reloader{"node certificate", certs.Reload})
		log.Info("node-to-node traffic is mutual TLS", "ca", c.ClusterCA, "cert", c.NodeCert,
			"subject", certs.Leaf().Subject.String(), "expires", certs.Leaf().NotAfter)
		if c.clusterSecret == nil {
			log.Warn("gossip is not encrypted: membership (node IDs and addresses) is visible on the gossip port; add a cluster secret to encrypt it")
		}
	}
	switch {
	case s.auth.Secure():
	case loopback(c.PrivateAddr) && loopback(c.GossipAddr):
		log.Info("the private API and gossip listen on loopback only; to run a cluster across machines, secure it (docs/security.md)")
	default:
		log.Warn("the cluster is NOT secured (--insecure-cluster): anyone who reaches the private or gossip port can read and destroy data (see docs/security.md)")
	}
	if c.CredentialsFile != "" {
		store, err := auth.NewStore(c.CredentialsFile)
		if err != nil {
			return nil, fmt.Errorf("--credentials-file: %w", err)
		}
		for _, w := range store.Warnings() {
			log.Warn("credentials file", "file", c.CredentialsFile, "warning", w)
		}
		s.clients = store
		s.reloaders = append(s.reloaders, reloader{"credentials", func() error {
			if err := store.Reload(); err != nil {
				return err
			}
			for _, w := range store.Warnings() {
				log.Warn("credentials file", "file", c.CredentialsFile, "warning", w)
			}
			return nil
		}})
		log.Info("the public API needs access keys", "file", c.CredentialsFile, "keys", store.Len())
	} else {
		log.Warn("the public API is open to every client that reaches it: give --credentials-file to require access keys")
	}
	if c.EncryptionKeyFile != "" {
		kr, err := readBodyKeys(c.EncryptionKeyFile, log)
		if err != nil {
			return nil, err
		}
		s.bodyKeys = kr
		log.Info("bodies are encrypted at rest", "keys", kr.String(), "primary", kr.Primary())
		s.reloaders = append(s.reloaders, reloader{"encryption keys", func() error {
			kr, err := readBodyKeys(c.EncryptionKeyFile, log)
			if err != nil {
				return err
			}
			if set := s.setKeys.Load(); set != nil {
				(*set)(kr)
			}
			log.Info("encryption keys", "keys", kr.String(), "primary", kr.Primary())
			return nil
		}})
	}
	if c.TLSCert != "" {
		certs, err := cluster.LoadCerts("", c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, err
		}
		s.publicTLS = certs.ServerConfig()
		s.reloaders = append(s.reloaders, reloader{"public TLS certificate", certs.Reload})
	}
	return s, nil
}

// onBodyKeys names who takes a reloaded encryption keyring (the node, once
// it is open).
func (s *security) onBodyKeys(set func(*seal.Keyring)) { s.setKeys.Store(&set) }

// readBodyKeys reads the key file of encryption at rest; it warns when
// others than its owner may read it.
func readBodyKeys(path string, log *slog.Logger) (*seal.Keyring, error) {
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		log.Warn("the encryption key file is readable by others than its owner", "file", path, "mode", st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--encryption-key-file: %w", err)
	}
	kr, err := seal.ParseKeyFile(b)
	if err != nil {
		return nil, fmt.Errorf("--encryption-key-file %s: %w", path, err)
	}
	return kr, nil
}

// startReloader reloads every reloader on SIGHUP until ctx ends; the
// returned function stops it and waits.
func startReloader(ctx context.Context, log *slog.Logger, rs ...reloader) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-quit:
				return
			case <-hup:
				for _, r := range rs {
					if err := r.reload(); err != nil {
						log.Error("reload failed; the old one stays in use", "what", r.name, "err", err)
					} else {
						log.Info("reloaded", "what", r.name)
					}
				}
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(quit)
		<-done
	}
}

// envFaultClockSkew shifts the node's clock, for fault tests of clock
// skew on real processes; it is never set in production.
const envFaultClockSkew = "OBJSTORE_FAULT_CLOCK_SKEW"

// faultClock returns the node's physical clock: nil (time.Now) unless the
// fault-injection variable asks for a skewed one.
func faultClock(log *slog.Logger) func() time.Time {
	v := os.Getenv(envFaultClockSkew)
	if v == "" {
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		log.Error("ignoring a bad clock skew", "var", envFaultClockSkew, "value", v)
		return nil
	}
	log.Warn("FAULT INJECTION: this node's clock is skewed", "by", d)
	return func() time.Time { return time.Now().Add(d) }
}

// Crash injection, for the crash tests on real processes: with
// OBJSTORE_FAULT_CRASH_AT naming a step of the write path, the process
// kills itself (SIGKILL, as a crash would: no deferred work, no flush) the
// OBJSTORE_FAULT_CRASH_AFTER-th time (default 1) a write reaches it.
const (
	envFaultCrashAt    = "OBJSTORE_FAULT_CRASH_AT"
	envFaultCrashAfter = "OBJSTORE_FAULT_CRASH_AFTER"
)

func faultHook(log *slog.Logger) func(string) error {
	at := os.Getenv(envFaultCrashAt)
	if at == "" {
		return nil
	}
	after, _ := strconv.Atoi(os.Getenv(envFaultCrashAfter))
	after = max(after, 1)
	log.Warn("FAULT INJECTION: this node will crash", "at", at, "after", after)
	var hits atomic.Int64
	return func(step string) error {
		if step == at && hits.Add(1) == int64(after) {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
		return nil
	}
}
