//go:build sidebyside

package sidebyside_test

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/objstore/objstore/internal/testminio"
	"github.com/objstore/objstore/internal/testnode"
)

// daemon is a server the harness started: another cache measured beside
// objstore. It is stopped when the test ends.
type daemon struct {
	base string // http://host:port
	cmd  *exec.Cmd
}

// nginxHead is what every nginx measured shares: one worker (the server
// core), sendfile, its files under the test's directory (%[1]s), the
// user line (%[4]s), and a cache zone. A config goes on inside http.
const nginxHead = `%[4]s
worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	sendfile on;
	client_body_temp_path %[1]s/client;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	proxy_cache_path %[1]s/cache levels=1:2 keys_zone=s3:16m max_size=16g inactive=1h use_temp_path=off;
`

// nginxConf is nginx's proxy_cache set up as its users set it up in front
// of S3 (%[2]s): keep-alive to the client and to the origin, every 200
// cached for an hour whatever the origin's headers, concurrent misses of
// one key collapsed into one origin request (proxy_cache_lock), and the
// cache status in a header; it listens on %[3]s.
const nginxConf = nginxHead + `	tcp_nodelay on;
	keepalive_requests 1000000;
	upstream origin {
		server %[2]s;
		keepalive 32;
	}
	server {
		listen %[3]s;
		location / {
			proxy_pass http://origin;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host %[2]s;
			proxy_cache s3;
			proxy_cache_valid 200 1h;
			proxy_cache_lock on;
			proxy_ignore_headers Cache-Control Expires Set-Cookie;
			add_header X-Cache-Status $upstream_cache_status;
		}
	}
}
`

// startNginx starts nginx with proxy_cache in front of the MinIO at
// endpoint, on a free loopback port.
func startNginx(t *testing.T, endpoint string) *daemon {
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return startNginxWith(t, nginxConf, u.Host)
}

// startNginxWith starts nginx with conf (nginxConf's placeholders: its
// directory, the upstream, its address, and the user line) in front of
// the server at upstream (host:port), on a free loopback port.
func startNginxWith(t *testing.T, conf, upstream string) *daemon {
	dir := t.TempDir()
	addr := testnode.FreeAddr(t)
	// Started by root, nginx's worker would run as nobody, who cannot
	// enter the test's private directory.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(conf, dir, upstream, addr, user)), 0o644); err != nil {
		t.Fatal(err)
	}
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
	}
	return startDaemon(t, "nginx", addr, filepath.Join(dir, "error.log"), exec.Command(bin, "-c", path, "-p", dir, "-e", filepath.Join(dir, "error.log")))
}

// startCachenator starts the cachenator binary bin in front of srv, alone
// in its cluster, with room for every object measured in memory.
func startCachenator(t *testing.T, bin string, srv *testminio.Server) *daemon {
	addr := testnode.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	log := filepath.Join(t.TempDir(), "cachenator.log")
	_, metricsPort, _ := net.SplitHostPort(testnode.FreeAddr(t))
	// Sizes in MB, TTL in minutes, timeout in ms; path-style requests, as
	// MinIO on an address needs.
	cmd := exec.Command(bin, "-host", "127.0.0.1", "-port", port, "-peers", "http://"+addr,
		"-s3-endpoint", srv.Endpoint(), "-s3-force-path-style", "-metrics-port", metricsPort,
		"-max-cache-size", strconv.Itoa(8<<10), "-ttl", "60", "-timeout", "60000")
	// GIN_MODE=release as its container image sets it: no debug log of
	// every request.
	cmd.Env = append(os.Environ(), append(srv.Env(), "GIN_MODE=release", "AWS_EC2_METADATA_DISABLED=true")...)
	return startDaemon(t, "cachenator", addr, log, cmd)
}

// startDaemon starts cmd, logging to logPath, and waits until addr takes
// connections.
func startDaemon(t *testing.T, name, addr, logPath string, cmd *exec.Cmd) *daemon {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	// In a process group of its own, killed whole: nginx's workers
	// outlive a master killed alone.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("log of %s:\n%s", name, b)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("%s exited at start:\n%s", name, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s", name, addr)
		}
	}
	return &daemon{base: "http://" + addr, cmd: cmd}
}
