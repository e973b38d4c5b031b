package main

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	cases := map[string]int64{
		"8388608": 8388608, "8MiB": 8 << 20, "8M": 8 << 20, "8MB": 8e6, "1.5GiB": 3 << 29,
		"512 KiB": 512 << 10, "2TB": 2e12, "0": 0, "10B": 10,
	}
	for in, want := range cases {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "5 parsecs", "1e3", "99999999TiB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}

func validConfig() config {
	return config{
		PublicAddr: "0.0.0.0:10999", PrivateAddr: "0.0.0.0:11999", GossipAddr: "0.0.0.0:7946",
		StateDir: "state/", FilesDir: "files/", RemoteDir: "remote/",
		ScrubInterval: "24h", ScrubRate: "32MiB", S3PartSize: "8MiB", S3Concurrency: 3, S3Timeout: "30s", MaxUploads: 8, ShutdownGrace: "30s", SyncInterval: "30s", GossipProfile: "lan", FetchPartSize: "8MiB", MemoryCache: "16MiB", DrainDelay: "0s", FetchParallel: 4, TombstoneTTL: "168h",
		MaxClockOffset: "500ms", InsecureCluster: true, MaxConns: 100, MaxConnsPerClient: 10, MinBodyRate: "16KiB",
	}
}

// A cluster reachable from the network must be secured, or say it is not
// on purpose; security settings that go together are checked together.
func TestValidateSecurity(t *testing.T) {
	c := validConfig()
	c.InsecureCluster = false
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "--insecure-cluster") {
		t.Errorf("unsecured cluster on 0.0.0.0: %v", err)
	}
	c = validConfig()
	c.InsecureCluster = false
	c.PrivateAddr, c.GossipAddr = "127.0.0.1:11999", "[::1]:7946"
	if err := c.validate(); err != nil {
		t.Errorf("unsecured cluster on loopback: %v", err)
	}
	c = validConfig()
	c.InsecureCluster = false
	t.Setenv(envClusterSecret, base64.StdEncoding.EncodeToString(make([]byte, 32)))
	if err := c.validate(); err != nil || len(c.clusterSecret) != 32 {
		t.Errorf("secret from the environment: %v", err)
	}
	t.Setenv(envClusterSecret, "c2hvcnQ=")
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "at least 32") || strings.Contains(err.Error(), "c2hvcnQ") {
		t.Errorf("short secret: %v", err)
	}
	t.Setenv(envClusterSecret, "")
	c = validConfig()
	c.ClusterCA = "ca.pem"
	c.TLSCert = "cert.pem"
	c.MaxClockOffset = "-1s"
	err := c.validate()
	for _, want := range []string{"--node-cert", "--tls-key", "--max-clock-offset"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error naming %s, got %v", want, err)
		}
	}
}

func TestValidate(t *testing.T) {
	c := validConfig()
	c.Nodes = []string{"a:7946,b:7946", " c "}
	c.MaxObjectSize = "5GiB"
	if err := c.validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	if len(c.Nodes) != 3 || c.maxObjectSize != 5<<30 {
		t.Errorf("parsed: nodes %q, max %d", c.Nodes, c.maxObjectSize)
	}
	bad := validConfig()
	bad.Debug = 2
	bad.PublicAddr = "nowhere"
	bad.MaxObjectSize = "-5"
	bad.S3PartSize = "1MiB"
	bad.Endpoint = "http://127.0.0.1:9000"
	err := bad.validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"--debug", "--public-addr", "--max-object-size", "--s3-part-size", "--s3-endpoint"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}
