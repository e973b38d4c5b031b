// Package s3clients gives tests real S3 command-line clients, set up for
// one S3 endpoint: the aws CLI, s3cmd, rclone and mc (the MinIO client).
//
// The aws CLI, s3cmd and rclone come from the machine (scripts/test-deps.sh
// installs Debian's packages). mc is not packaged by Debian: it is taken
// from $OBJSTORE_MC when that is set, else from
// <user cache dir>/objstore/mc-<MCVersion>/mc, which is built with
// "go install" on first use under a file lock shared by parallel test
// processes. A test that asks for a tool the machine lacks is skipped, or
// failed when $CI is set.
//
// Each client's configuration, secrets included, is written into the
// test's temp dir and handed to the tool by a flag or an environment
// variable: nothing goes into $HOME, and no secret is on a command line.
// Every client addresses buckets path-style, uploads a file larger than
// MultipartAbove in parts, and retries little or not at all, so that a
// failing endpoint fails a test in seconds rather than after minutes of
// back-off.
package s3clients

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/objstore/objstore/internal/gobin"
)

// MCVersion is the pinned version of the mc module.
const MCVersion = "v0.0.0-20250313080218-cf909e1063a9"

// EnvMC names the environment variable holding the path of an mc binary to
// use instead of the cached build.
const EnvMC = "OBJSTORE_MC"

// MultipartAbove is a size above which every client set up here uploads a
// file in parts: aws above 8 MiB, s3cmd above 15 MiB, mc above 16 MiB, and
// rclone above 8 MiB as configured here.
const MultipartAbove = 16 << 20

const (
	mcModule = "github.com/minio/mc"
	// remoteName is the rclone remote and the mc alias of the endpoint.
	remoteName = "objstore"
	// defaultRegion is what the clients sign for when Endpoint has none.
	defaultRegion = "us-east-1"
	// waitDelay bounds the wait for a killed tool's output pipes, which a
	// grandchild may hold open.
	waitDelay = 5 * time.Second
)

// Endpoint is an S3 endpoint and the access key the clients use on it.
type Endpoint struct {
	// URL is the endpoint's base URL, http://host:port.
	URL string
	// Region is the region requests are signed for; empty means us-east-1.
	Region string
	// AccessKey and SecretKey are the access key the client signs with.
	AccessKey, SecretKey string
}

func (e Endpoint) region() string {
	if e.Region == "" {
		return defaultRegion
	}
	return e.Region
}

// Client is one command-line tool set up for one endpoint.
type Client struct {
	// Name is the tool's name: aws, s3cmd, rclone or mc.
	Name string
	// Bin is the tool's executable.
	Bin string

	root string   // how the tool names a bucket: root + bucket
	args []string // before the caller's: the configuration flags
	env  []string // added to the environment: the configuration files
}

// Remote returns how the tool names key in bucket, such as
// "s3://bucket/key" or "objstore:bucket/key"; with an empty key, the bucket.
func (c *Client) Remote(bucket, key string) string {
	if key == "" {
		return c.root + bucket
	}
	return c.root + bucket + "/" + key
}

// Command returns the tool's command with args, configured for its
// endpoint, bounded by ctx.
func (c *Client) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.Bin, append(append([]string(nil), c.args...), args...)...)
	cmd.Env = append(cleanEnv(os.Environ()), c.env...)
	cmd.WaitDelay = waitDelay
	return cmd
}

// Run runs the tool with args and returns its standard output. A failure's
// error holds the command line (which has no secret), the standard error
// and the end of the standard output.
func (c *Client) Run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := c.Command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v after %v)", err, ctx.Err(), time.Since(start).Round(time.Millisecond))
		}
		return stdout.Bytes(), fmt.Errorf("%s: %w\nstderr:\n%s\nstdout (end):\n%s",
			strings.Join(cmd.Args, " "), err, tail(stderr.Bytes(), 8<<10), tail(stdout.Bytes(), 2<<10))
	}
	return stdout.Bytes(), nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// cleanEnv drops the settings of the parent's environment that would
// override a client's configuration file (credentials, endpoints, aliases,
// proxies).
func cleanEnv(env []string) []string {
	var out []string
	for _, e := range env {
		name, _, _ := strings.Cut(e, "=")
		upper := strings.ToUpper(name)
		switch {
		case strings.HasPrefix(upper, "AWS_"), strings.HasPrefix(upper, "MC_"), strings.HasPrefix(upper, "RCLONE_"),
			strings.HasPrefix(upper, "S3CMD_"), upper == "HTTP_PROXY", upper == "HTTPS_PROXY", upper == "ALL_PROXY":
			continue
		}
		out = append(out, e)
	}
	return out
}

// missing skips t for want of a tool, or fails it when CI is set: CI must
// run everything.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("s3clients: "+format+" (CI is set, so this is a failure, not a skip)", args...)
	}
	t.Skipf("s3clients: "+format, args...)
}

// packaged holds the outcome of looking up each packaged tool, once per
// process.
var packaged sync.Map // name -> *lookup

type lookup struct {
	once sync.Once
	path string
	err  error
}

// packagedTool returns the path of a tool that scripts/test-deps.sh
// installs, after running it with env and versionArgs: a pyenv shim, for
// one, is on PATH even where the selected Python lacks the tool.
func packagedTool(t testing.TB, name, pkg string, env []string, versionArgs ...string) string {
	t.Helper()
	v, _ := packaged.LoadOrStore(name, new(lookup))
	l := v.(*lookup)
	l.once.Do(func() {
		if l.path, l.err = exec.LookPath(name); l.err != nil {
			return
		}
		l.err = checkBinary(l.path, env, versionArgs...)
	})
	if l.err != nil {
		missing(t, "%s is not usable: %v; `bash scripts/test-deps.sh` (as root) installs Debian's %s", name, l.err, pkg)
	}
	return l.path
}

// AWSPath returns the path of the aws CLI, or skips t.
func AWSPath(t testing.TB) string { return packagedTool(t, "aws", "awscli", nil, "--version") }

// S3cmdPath returns the path of s3cmd, or skips t.
func S3cmdPath(t testing.TB) string { return packagedTool(t, "s3cmd", "s3cmd", nil, "--version") }

// RclonePath returns the path of rclone, or skips t.
func RclonePath(t testing.TB) string {
	// Without a config file named, rclone creates ~/.config/rclone.
	return packagedTool(t, "rclone", "rclone", []string{"RCLONE_CONFIG=" + os.DevNull}, "version")
}

// checkBinary runs the tool with versionArgs, which also catches a
// truncated file or a broken interpreter.
func checkBinary(bin string, env []string, versionArgs ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, versionArgs...)
	cmd.Env = append(cleanEnv(os.Environ()), env...)
	cmd.WaitDelay = waitDelay
	out, err := cmd.CombinedOutput()
	if err != nil {
		if msg := strings.TrimSpace(string(out)); msg != "" {
			return fmt.Errorf("%s %s: %w: %s", bin, strings.Join(versionArgs, " "), err, msg)
		}
		return fmt.Errorf("%s %s: %w", bin, strings.Join(versionArgs, " "), err)
	}
	return nil
}

// writeFile writes a configuration file readable by its owner only, as it
// holds a secret.
func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("s3clients: %v", err)
	}
}

// hostPort returns the host:port of the endpoint's URL.
func hostPort(t testing.TB, ep Endpoint) string {
	t.Helper()
	u, err := url.Parse(ep.URL)
	if err != nil || u.Host == "" || u.Scheme != "http" {
		t.Fatalf("s3clients: endpoint %q: want http://host:port (%v)", ep.URL, err)
	}
	return u.Host
}

// AWS returns the aws CLI set up for ep, or skips t. Its configuration and
// credentials files are named by AWS_CONFIG_FILE and
// AWS_SHARED_CREDENTIALS_FILE; the endpoint is given by --endpoint-url,
// which every aws CLI version takes (endpoint_url in the config file is
// newer than Debian's).
//
// It does not retry, and gives up on a response after 20 s rather than
// botocore's 60: a response botocore cannot read (as after a zero-length
// upload answered without "100 Continue") then fails the command instead
// of costing a minute and a silent retry.
func AWS(t testing.TB, ep Endpoint) *Client {
	t.Helper()
	bin := AWSPath(t)
	dir := t.TempDir()
	config, creds := filepath.Join(dir, "config"), filepath.Join(dir, "credentials")
	// cli_pager is empty so that aws v2 never waits on a pager; four
	// concurrent requests suit a small test machine.
	writeFile(t, config, fmt.Sprintf(`[default]
region = %s
output = json
cli_pager =
max_attempts = 1
s3 =
    addressing_style = path
    max_concurrent_requests = 4
`, ep.region()))
	writeFile(t, creds, fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", ep.AccessKey, ep.SecretKey))
	return &Client{
		Name: "aws",
		Bin:  bin,
		root: "s3://",
		args: []string{"--endpoint-url", ep.URL, "--cli-read-timeout", "20"},
		env: []string{"AWS_CONFIG_FILE=" + config, "AWS_SHARED_CREDENTIALS_FILE=" + creds,
			"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER="},
	}
}

// S3cmd returns s3cmd set up for ep, or skips t. Its configuration file is
// given by -c; host_bucket without %(bucket)s makes it address buckets
// path-style.
func S3cmd(t testing.TB, ep Endpoint) *Client {
	t.Helper()
	bin := S3cmdPath(t)
	host := hostPort(t, ep)
	config := filepath.Join(t.TempDir(), "s3cfg")
	writeFile(t, config, fmt.Sprintf(`[default]
access_key = %s
secret_key = %s
host_base = %s
host_bucket = %s
bucket_location = %s
use_https = False
signature_v2 = False
progress_meter = False
max_retries = 2
`, ep.AccessKey, ep.SecretKey, host, host, ep.region()))
	return &Client{Name: "s3cmd", Bin: bin, root: "s3://", args: []string{"-c", config}}
}

// Rclone returns rclone set up for ep as the remote "objstore:", or skips
// t. Its configuration file is named by RCLONE_CONFIG. upload_cutoff is
// lowered from 200 MiB so that the files of a test are uploaded in parts;
// no_check_bucket keeps it from trying to create the bucket.
func Rclone(t testing.TB, ep Endpoint) *Client {
	t.Helper()
	bin := RclonePath(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "rclone.conf")
	writeFile(t, config, fmt.Sprintf(`[%s]
type = s3
provider = Other
access_key_id = %s
secret_access_key = %s
endpoint = %s
region = %s
force_path_style = true
no_check_bucket = true
upload_cutoff = 8M
chunk_size = 8M
`, remoteName, ep.AccessKey, ep.SecretKey, ep.URL, ep.region()))
	return &Client{
		Name: "rclone",
		Bin:  bin,
		root: remoteName + ":",
		env: []string{"RCLONE_CONFIG=" + config, "RCLONE_CACHE_DIR=" + filepath.Join(dir, "cache"),
			"RCLONE_RETRIES=1", "RCLONE_LOW_LEVEL_RETRIES=2"},
	}
}

// MC returns mc set up for ep as the alias "objstore/", or skips t. Its
// configuration folder is given by --config-dir (and MC_CONFIG_DIR); its
// config.json is written here, as `mc alias set` would take the secret on
// its command line.
func MC(t testing.TB, ep Endpoint) *Client {
	t.Helper()
	bin := MCPath(t)
	hostPort(t, ep)
	dir := filepath.Join(t.TempDir(), "mc")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatalf("s3clients: %v", err)
	}
	type alias struct {
		URL       string `json:"url"`
		AccessKey string `json:"accessKey"`
		SecretKey string `json:"secretKey"`
		API       string `json:"api"`
		Path      string `json:"path"`
	}
	config, err := json.MarshalIndent(struct {
		Version string           `json:"version"`
		Aliases map[string]alias `json:"aliases"`
	}{"10", map[string]alias{remoteName: {ep.URL, ep.AccessKey, ep.SecretKey, "s3v4", "on"}}}, "", "\t")
	if err != nil {
		t.Fatalf("s3clients: %v", err)
	}
	writeFile(t, filepath.Join(dir, "config.json"), string(config))
	return &Client{
		Name: "mc",
		Bin:  bin,
		root: remoteName + "/",
		args: []string{"--config-dir", dir, "--no-color", "--disable-pager"},
		env:  []string{"MC_CONFIG_DIR=" + dir, "MC_UPDATE=off"},
	}
}

// errNoMC marks failures to obtain mc, which skip tests outside CI.
var errNoMC = errors.New("mc binary not available")

var (
	mcOnce sync.Once
	mcPath string
	mcErr  error
)

// MCPath returns the path of mc, building it on first use, or skips t.
func MCPath(t testing.TB) string {
	t.Helper()
	mcOnce.Do(func() { mcPath, mcErr = mcBinary(t) })
	if mcErr != nil {
		if errors.Is(mcErr, errNoMC) {
			missing(t, "%v\n%s", mcErr, mcInstallHint())
		}
		t.Fatalf("s3clients: %v", mcErr)
	}
	return mcPath
}

func mcInstallHint() string {
	return mcTool.InstallHint()
}

// mcTool is the pinned MinIO client.
var mcTool = gobin.Tool{
	Name: "mc", Module: mcModule, Version: MCVersion, Binary: "mc",
	Env: EnvMC, Check: checkMC, BuildTime: "a minute or more",
}

// checkMC runs "mc --version" with a throwaway configuration folder, as mc
// creates one in $HOME when given none.
func checkMC(bin string) error {
	dir, err := os.MkdirTemp("", "objstore-mc-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	return checkBinary(bin, []string{"MC_CONFIG_DIR=" + dir, "MC_UPDATE=off"}, "--config-dir", dir, "--version")
}

// mcBinary returns the path of a working mc, building it if needed.
func mcBinary(t testing.TB) (string, error) {
	bin, err := mcTool.Path(t)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errNoMC, err)
	}
	return bin, nil
}
