package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// CertReloader holds a certificate and key, and optionally a CA, read from
// files, and swaps in new ones when Reload is called (on SIGHUP), so
// certificates can be renewed without a restart. Connections already open
// keep the certificates they were made with. It is safe for concurrent use.
type CertReloader struct {
	caFile, certFile, keyFile string

	mu   sync.RWMutex // guards cert and pool
	cert *tls.Certificate
	pool *x509.CertPool // nil without a CA file
}

// LoadCerts reads certFile and keyFile (PEM), and caFile (PEM, one or more
// CA certificates) unless it is empty.
func LoadCerts(caFile, certFile, keyFile string) (*CertReloader, error) {
	r := &CertReloader{caFile: caFile, certFile: certFile, keyFile: keyFile}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the files again. On any error the certificates in use stay
// and the error is returned.
func (r *CertReloader) Reload() error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("cluster: load certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	if cert.Leaf != nil && time.Now().After(cert.Leaf.NotAfter) {
		return fmt.Errorf("cluster: certificate %s expired on %s", r.certFile, cert.Leaf.NotAfter.Format(time.RFC3339))
	}
	var pool *x509.CertPool
	if r.caFile != "" {
		pem, err := os.ReadFile(r.caFile)
		if err != nil {
			return fmt.Errorf("cluster: read CA %s: %w", r.caFile, err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("cluster: CA file %s holds no PEM certificate", r.caFile)
		}
		if cert.Leaf != nil {
			if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				return fmt.Errorf("cluster: certificate %s is not signed by the CA in %s: %w", r.certFile, r.caFile, err)
			}
		}
	}
	r.mu.Lock()
	r.cert, r.pool = &cert, pool
	r.mu.Unlock()
	return nil
}

// Leaf returns the current certificate.
func (r *CertReloader) Leaf() *x509.Certificate {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cert.Leaf
}

func (r *CertReloader) current() (*tls.Certificate, *x509.CertPool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cert, r.pool
}

// ServerConfig returns a TLS configuration serving the current certificate.
// With a CA, clients must present a certificate the current CA signed for
// client authentication (mutual TLS); without one, any client may connect.
func (r *CertReloader) ServerConfig() *tls.Config {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			c, _ := r.current()
			return c, nil
		},
	}
	if r.caFile != "" {
		// The pool is read per handshake, so a reloaded CA applies to the
		// next connection; resumed sessions would skip that check, so
		// there are none.
		cfg.SessionTicketsDisabled = true
		cfg.ClientAuth = tls.RequireAnyClientCert
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			_, pool := r.current()
			return verifyChain(raw, pool, "", x509.ExtKeyUsageClientAuth)
		}
	}
	return cfg
}

// ClientConfig returns a TLS configuration that presents the current
// certificate and accepts only a server certificate the current CA signed
// for the host dialled.
func (r *CertReloader) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, _ := r.current()
			return c, nil
		},
		// Verification is done below against the CA as it is now, rather
		// than against a pool fixed when the transport was made.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, pool := r.current()
			raw := make([][]byte, len(cs.PeerCertificates))
			for i, c := range cs.PeerCertificates {
				raw[i] = c.Raw
			}
			return verifyChain(raw, pool, cs.ServerName, x509.ExtKeyUsageServerAuth)
		},
	}
}

// errBadCert marks the errors of verifyChain.
var errBadCert = errors.New("cluster: peer certificate refused")

// verifyChain checks that the first certificate of raw chains to pool for
// usage and, when host is set, covers host. Its errors match errBadCert.
func verifyChain(raw [][]byte, pool *x509.CertPool, host string, usage x509.ExtKeyUsage) error {
	if pool == nil {
		return fmt.Errorf("%w: no CA to verify it with", errBadCert)
	}
	if len(raw) == 0 {
		return fmt.Errorf("%w: the peer presented none", errBadCert)
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, b := range raw {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return fmt.Errorf("%w: %w", errBadCert, err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}})
	if err != nil {
		return fmt.Errorf("%w: %w", errBadCert, err)
	}
	return nil
}
