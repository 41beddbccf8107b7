package config_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/drctl/drctl/internal/config"
)

// isolate clears DRCTL_* variables and points HOME and the working
// directory at empty temporary directories, so only what a test sets is
// read. It returns the working directory.
func isolate(t *testing.T) string {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "DRCTL_") {
			t.Setenv(k, "") // restored after the test
			os.Unsetenv(k)
		}
	}
	t.Setenv("HOME", t.TempDir())
	t.Setenv("USER", "tester")
	dir := t.TempDir()
	t.Chdir(dir)
	return dir
}

func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// cliFlags defines the flags drctl's commands bind and sets those in set.
func cliFlags(t *testing.T, set map[string]string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	for _, name := range []string{"address", "namespace", "task-queue", "as"} {
		fs.String(name, "", "")
	}
	for name, v := range set {
		if err := fs.Set(name, v); err != nil {
			t.Fatal(err)
		}
	}
	return fs
}

func defaultIdentity() string {
	host, err := os.Hostname()
	if err != nil {
		return "tester"
	}
	return "tester@" + host
}

func TestLoadPrecedence(t *testing.T) {
	const file = `
temporal:
  address: file:7233
  namespace: file-ns
  task_queue: file-q
identity: file-id
worker:
  stop_timeout: 30s
`
	type want struct{ address, namespace, taskQueue, identity string }
	tests := []struct {
		name  string
		file  string
		env   map[string]string
		flags map[string]string
		want  want
	}{
		{
			name: "defaults",
			want: want{"localhost:7233", "default", "drctl", ""},
		},
		{
			name: "file over defaults",
			file: file,
			want: want{"file:7233", "file-ns", "file-q", "file-id"},
		},
		{
			name: "env over file",
			file: file,
			env:  map[string]string{"DRCTL_TEMPORAL_ADDRESS": "env:7233", "DRCTL_TEMPORAL_TASK_QUEUE": "env-q", "DRCTL_IDENTITY": "env-id"},
			want: want{"env:7233", "file-ns", "env-q", "env-id"},
		},
		{
			name: "env over defaults",
			env:  map[string]string{"DRCTL_TEMPORAL_NAMESPACE": "env-ns"},
			want: want{"localhost:7233", "env-ns", "drctl", ""},
		},
		{
			name:  "flags over env over file",
			file:  file,
			env:   map[string]string{"DRCTL_TEMPORAL_ADDRESS": "env:7233", "DRCTL_TEMPORAL_NAMESPACE": "env-ns"},
			flags: map[string]string{"address": "flag:7233", "as": "flag-id"},
			want:  want{"flag:7233", "env-ns", "file-q", "flag-id"},
		},
		{
			name:  "every flag",
			file:  file,
			env:   map[string]string{"DRCTL_TEMPORAL_ADDRESS": "env:7233", "DRCTL_TEMPORAL_NAMESPACE": "env-ns", "DRCTL_TEMPORAL_TASK_QUEUE": "env-q", "DRCTL_IDENTITY": "env-id"},
			flags: map[string]string{"address": "flag:7233", "namespace": "flag-ns", "task-queue": "flag-q", "as": "flag-id"},
			want:  want{"flag:7233", "flag-ns", "flag-q", "flag-id"},
		},
		{
			name:  "flags over defaults",
			flags: map[string]string{"task-queue": "flag-q"},
			want:  want{"localhost:7233", "default", "flag-q", ""},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := isolate(t)
			if tc.file != "" {
				writeFile(t, filepath.Join(dir, "drctl.yaml"), tc.file)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			// Flags that are defined but not set must not override anything.
			c, err := config.Load("", cliFlags(t, tc.flags))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if tc.want.identity == "" {
				tc.want.identity = defaultIdentity()
			}
			got := want{c.Temporal.Address, c.Temporal.Namespace, c.Temporal.TaskQueue, c.Identity}
			if got != tc.want {
				t.Errorf("Load = %+v, want %+v", got, tc.want)
			}
			wantStop := 10 * time.Second
			if tc.file != "" {
				wantStop = 30 * time.Second
			}
			if c.Worker.StopTimeout != wantStop || c.Worker.StickyTimeout != time.Second {
				t.Errorf("worker = %+v, want stop_timeout %s and the default sticky_timeout", c.Worker, wantStop)
			}
		})
	}
}

func TestLoadNilFlags(t *testing.T) {
	isolate(t)
	t.Setenv("DRCTL_TELEMETRY_TRACES", "stdout")
	c, err := config.Load("", nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Telemetry.Traces != "stdout" || c.Telemetry.Metrics != "none" {
		t.Errorf("telemetry = %+v, want traces from env, metrics default", c.Telemetry)
	}
}

// TestLoadPrometheusMetrics: telemetry.metrics: prometheus serves on
// loopback unless told otherwise; the address comes from the file, and an
// environment variable overrides it.
func TestLoadPrometheusMetrics(t *testing.T) {
	dir := isolate(t)
	t.Setenv("DRCTL_TELEMETRY_METRICS", "prometheus")
	c, err := config.Load("", nil)
	if err != nil || c.Telemetry.Metrics != "prometheus" || c.Telemetry.MetricsListen != "127.0.0.1:9464" {
		t.Fatalf("Load = %+v, %v; want prometheus on the loopback default", c.Telemetry, err)
	}
	writeFile(t, filepath.Join(dir, "drctl.yaml"), "telemetry:\n  metrics: prometheus\n  metrics_listen: 0.0.0.0:9100\n")
	if c, err = config.Load("", nil); err != nil || c.Telemetry.MetricsListen != "0.0.0.0:9100" {
		t.Fatalf("Load = %+v, %v; want the file's address", c.Telemetry, err)
	}
	t.Setenv("DRCTL_TELEMETRY_METRICS_LISTEN", "127.0.0.1:0")
	if c, err = config.Load("", nil); err != nil || c.Telemetry.MetricsListen != "127.0.0.1:0" {
		t.Fatalf("Load = %+v, %v; want the environment's address", c.Telemetry, err)
	}
}

func TestLoadFindsFile(t *testing.T) {
	t.Run("explicit path", func(t *testing.T) {
		dir := isolate(t)
		writeFile(t, filepath.Join(dir, "drctl.yaml"), "temporal: {address: cwd:1}\n")
		path := writeFile(t, filepath.Join(t.TempDir(), "other.yaml"), "temporal: {address: explicit:1}\n")
		t.Setenv("DRCTL_CONFIG", writeFile(t, filepath.Join(t.TempDir(), "env.yaml"), "temporal: {address: env:1}\n"))
		c, err := config.Load(path, nil)
		if err != nil || c.Temporal.Address != "explicit:1" {
			t.Errorf("Load(path) = %q, %v; want the explicit file's address", c.Temporal.Address, err)
		}
	})
	t.Run("DRCTL_CONFIG over ./drctl.yaml", func(t *testing.T) {
		dir := isolate(t)
		writeFile(t, filepath.Join(dir, "drctl.yaml"), "temporal: {address: cwd:1}\n")
		t.Setenv("DRCTL_CONFIG", writeFile(t, filepath.Join(t.TempDir(), "env.yaml"), "temporal: {address: env:1}\n"))
		c, err := config.Load("", nil)
		if err != nil || c.Temporal.Address != "env:1" {
			t.Errorf("Load = %q, %v; want DRCTL_CONFIG's address", c.Temporal.Address, err)
		}
	})
	t.Run("home config", func(t *testing.T) {
		isolate(t)
		home := os.Getenv("HOME")
		if err := os.MkdirAll(filepath.Join(home, ".config", "drctl"), 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(home, ".config", "drctl", "drctl.yaml"), "temporal: {address: home:1}\n")
		c, err := config.Load("", nil)
		if err != nil || c.Temporal.Address != "home:1" {
			t.Errorf("Load = %q, %v; want the home config's address", c.Temporal.Address, err)
		}
	})
	t.Run("missing explicit file", func(t *testing.T) {
		isolate(t)
		path := filepath.Join(t.TempDir(), "absent.yaml")
		_, err := config.Load(path, nil)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Load(missing) = %v, want an error naming %s", err, path)
		}
	})
}

func TestLoadRefuses(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		say  []string
	}{
		{"unknown nested key", "temporal:\n  adress: x:1\n", nil, []string{"unknown key temporal.adress (did you mean temporal.address?)"}},
		{"unknown top-level key", "telemetery:\n  traces: otlp\n", nil, []string{"unknown key telemetery.traces (did you mean telemetry.traces?)"}},
		{"unknown key, no near one", "readiness: {webhook: x}\nslack: {users: {alice: U123ABC}}\n", nil, []string{"unknown key readiness.webhook;"}},
		{"a secret reference's key", "slack: {bot_token: {envv: X}}\n", nil, []string{"unknown key slack.bot_token.envv (did you mean slack.bot_token.env?)"}},
		{"bad YAML", "temporal: [\n", nil, []string{"drctl.yaml"}},
		{"invalid value from file", "telemetry: {traces: jaeger}\n", nil, []string{`telemetry.traces is "jaeger"`}},
		{"invalid value from env", "", map[string]string{"DRCTL_TELEMETRY_METRICS": "statsd"}, []string{`telemetry.metrics is "statsd"; use none, stdout, otlp or prometheus`}},
		{"metrics address without a port", "telemetry: {metrics: prometheus, metrics_listen: localhost}\n", nil, []string{`telemetry.metrics_listen is "localhost"; use host:port`}},
		{"bad duration", "worker: {stop_timeout: soon}\n", nil, []string{"stop_timeout"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := isolate(t)
			if tc.file != "" {
				writeFile(t, filepath.Join(dir, "drctl.yaml"), tc.file)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := config.Load("", nil)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, want := range tc.say {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Load error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*config.Config)
		say    []string // empty: valid
	}{
		{"defaults", func(*config.Config) {}, nil},
		{"empty telemetry means none", func(c *config.Config) { c.Telemetry = config.Telemetry{} }, nil},
		{"otlp", func(c *config.Config) { c.Telemetry.Traces, c.Telemetry.Metrics = "otlp", "stdout" }, nil},
		{"mTLS", func(c *config.Config) { c.Temporal.TLS.CertFile, c.Temporal.TLS.KeyFile = "c.pem", "k.pem" }, nil},
		{"one secret source", func(c *config.Config) { c.Temporal.APIKey.Env = "TEMPORAL_API_KEY" }, nil},
		{"empty address", func(c *config.Config) { c.Temporal.Address = "" },
			[]string{"temporal.address is empty; set it to host:port of your Temporal frontend"}},
		{"empty task queue", func(c *config.Config) { c.Temporal.TaskQueue = "" }, []string{"temporal.task_queue is empty"}},
		{"api key from env and file", func(c *config.Config) { c.Temporal.APIKey = config.SecretRef{Env: "K", File: "/k"} },
			[]string{"temporal.api_key names both env and file; keep one"}},
		{"cert without key", func(c *config.Config) { c.Temporal.TLS.CertFile = "c.pem" },
			[]string{"temporal.tls needs both cert_file and key_file"}},
		{"key without cert", func(c *config.Config) { c.Temporal.TLS.KeyFile = "k.pem" },
			[]string{"temporal.tls needs both cert_file and key_file"}},
		{"bad traces", func(c *config.Config) { c.Telemetry.Traces = "jaeger" },
			[]string{`telemetry.traces is "jaeger"; use none, stdout or otlp`}},
		{"bad metrics", func(c *config.Config) { c.Telemetry.Metrics = "OTLP" },
			[]string{`telemetry.metrics is "OTLP"; use none, stdout, otlp or prometheus`}},
		{"prometheus", func(c *config.Config) { c.Telemetry.Metrics = "prometheus" }, nil},
		{"prometheus on a picked port", func(c *config.Config) { c.Telemetry.Metrics, c.Telemetry.MetricsListen = "prometheus", "127.0.0.1:0" }, nil},
		{"an unused bad metrics address", func(c *config.Config) { c.Telemetry.MetricsListen = "nonsense" }, nil},
		{"prometheus without an address", func(c *config.Config) { c.Telemetry.Metrics, c.Telemetry.MetricsListen = "prometheus", "" },
			[]string{`telemetry.metrics_listen is ""; use host:port, such as 127.0.0.1:9464`}},
		{"slack IDs", func(c *config.Config) {
			c.Slack.Users = map[string]string{"U012AB3CD": "alice", "W0BOB": "bob"}
			c.Slack.Groups = map[string]string{"S0DBA": "dba"}
		}, nil},
		{"a lower-case slack user ID", func(c *config.Config) { c.Slack.Users = map[string]string{"ubob": "bob"} },
			[]string{`slack.users: "ubob" is not a Slack user ID (U… or W…) (Slack IDs are upper-case: did you mean "UBOB"?)`}},
		{"a reversed slack user mapping", func(c *config.Config) { c.Slack.Users = map[string]string{"bob": "UBOB"} },
			[]string{`slack.users: "bob" is not a Slack user ID (U… or W…) (the mapping is Slack ID: name; is it reversed?)`}},
		{"a blank approver group name", func(c *config.Config) { c.Slack.Groups = map[string]string{"S0DBA": " "} },
			[]string{"slack.groups: S0DBA maps to an empty group name"}},
		{"a name no decision could carry", func(c *config.Config) { c.Slack.Users = map[string]string{"UBOB": "Bob Smith"} },
			[]string{`slack.users: UBOB maps to "Bob Smith", not a usable identity: identity "Bob Smith" has ' '`}},
		{"a group name spelled as a pattern", func(c *config.Config) { c.Slack.Groups = map[string]string{"S0DBA": "group:dba"} },
			[]string{`slack.groups: S0DBA maps to "group:dba", not a usable group name: identity "group:dba" has ':'`}},
		{"every problem at once", func(c *config.Config) {
			c.Temporal.Address = ""
			c.Temporal.TLS.KeyFile = "k.pem"
			c.Telemetry.Traces = "x"
		}, []string{"temporal.address is empty", "; temporal.tls needs both", `; telemetry.traces is "x"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Defaults()
			tc.change(&c)
			err := c.Validate()
			if len(tc.say) == 0 {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate(%+v) = nil, want an error", c)
			}
			for _, want := range tc.say {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestSecretRefRead(t *testing.T) {
	const secret = "s3cr3t-value"
	dir := t.TempDir()
	secretFile := writeFile(t, filepath.Join(dir, "key"), "  "+secret+"\n")
	t.Setenv("DRCTL_TEST_SECRET", secret)
	t.Setenv("DRCTL_TEST_EMPTY", "")

	for _, tc := range []struct {
		name string
		ref  config.SecretRef
	}{
		{"env", config.SecretRef{Env: "DRCTL_TEST_SECRET"}},
		{"file, trimmed", config.SecretRef{File: secretFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.ref.Read()
			if err != nil || got != secret {
				t.Errorf("Read() = %q, %v; want %q", got, err, secret)
			}
			if !tc.ref.IsSet() {
				t.Error("IsSet() = false")
			}
		})
	}

	for _, tc := range []struct {
		name string
		ref  config.SecretRef
		say  string
	}{
		{"both sources", config.SecretRef{Env: "DRCTL_TEST_SECRET", File: secretFile}, "both env and file"},
		{"unset env", config.SecretRef{Env: "DRCTL_TEST_ABSENT"}, "environment variable DRCTL_TEST_ABSENT is not set"},
		{"empty env", config.SecretRef{Env: "DRCTL_TEST_EMPTY"}, "DRCTL_TEST_EMPTY is not set"},
		{"missing file", config.SecretRef{File: filepath.Join(dir, "absent")}, filepath.Join(dir, "absent")},
		{"directory", config.SecretRef{File: dir}, "read secret file"},
		{"nothing", config.SecretRef{}, "no secret source set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.ref.Read()
			if err == nil {
				t.Fatalf("Read() = %q, want an error", got)
			}
			if got != "" {
				t.Errorf("Read() returned %q with an error", got)
			}
			if !strings.Contains(err.Error(), tc.say) {
				t.Errorf("error %q does not contain %q", err, tc.say)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q reveals the secret", err)
			}
		})
	}

	if (config.SecretRef{}).IsSet() {
		t.Error("empty SecretRef IsSet() = true")
	}
}

// Slack IDs are case-sensitive and upper-case; the loader keeps the keys of
// slack.users and slack.groups exactly as the file writes them, however the
// file names the sections.
func TestLoadKeepsSlackIDs(t *testing.T) {
	for _, tc := range []struct {
		name, file string
	}{
		{"block style", `
slack:
  users:
    U_BOB: bob
    W012AB3CD: Alice.Smith
  groups:
    S0DBA: dba
`},
		{"flow style, sections in other case", "Slack:\n  Users: {U_BOB: bob, W012AB3CD: Alice.Smith}\n  GROUPS: {S0DBA: dba}\n"},
		{"an alias for an identity", `
slack:
  users: {U_BOB: &bob bob, W012AB3CD: Alice.Smith}
  groups: {S0DBA: dba}
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := isolate(t)
			path := writeFile(t, filepath.Join(dir, "drctl.yaml"), tc.file)
			c, err := config.Load(path, nil)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			wantUsers := map[string]string{"U_BOB": "bob", "W012AB3CD": "Alice.Smith"}
			if !maps.Equal(c.Slack.Users, wantUsers) {
				t.Errorf("slack.users = %v, want %v", c.Slack.Users, wantUsers)
			}
			if want := map[string]string{"S0DBA": "dba"}; !maps.Equal(c.Slack.Groups, want) {
				t.Errorf("slack.groups = %v, want %v", c.Slack.Groups, want)
			}
		})
	}
	t.Run("found in the working directory", func(t *testing.T) {
		dir := isolate(t)
		writeFile(t, filepath.Join(dir, "drctl.yaml"), "slack: {users: {UBOB: bob}}\n")
		c, err := config.Load("", nil)
		if err != nil || !maps.Equal(c.Slack.Users, map[string]string{"UBOB": "bob"}) {
			t.Errorf("Load = %v, %v; want users {UBOB: bob}", c.Slack.Users, err)
		}
	})
	t.Run("no slack section", func(t *testing.T) {
		dir := isolate(t)
		writeFile(t, filepath.Join(dir, "drctl.yaml"), "identity: me\n")
		c, err := config.Load("", nil)
		if err != nil || len(c.Slack.Users) != 0 || len(c.Slack.Groups) != 0 {
			t.Errorf("Load = %+v, %v; want no users or groups", c.Slack, err)
		}
	})
}

// A key that cannot be the Slack ID it stands for is refused at load time,
// naming the key, so a mapping never silently fails to match a click.
func TestLoadRefusesBadSlackIDs(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		say  []string
	}{
		{"a name for a user ID", "slack: {users: {bob: bob}}\n", nil,
			[]string{`slack.users: "bob" is not a Slack user ID`}},
		{"a lower-case user ID", "slack: {users: {u012ab3cd: bob}}\n", nil,
			[]string{`slack.users: "u012ab3cd" is not a Slack user ID`, `"U012AB3CD"`}},
		{"a user ID as a group", "slack: {groups: {U012AB3CD: dba}}\n", nil,
			[]string{`slack.groups: "U012AB3CD" is not a Slack user group ID`}},
		{"a lower-case group ID", "slack: {groups: {s0dba: dba}}\n", nil,
			[]string{`slack.groups: "s0dba" is not a Slack user group ID`, `"S0DBA"`}},
		{"an empty identity", "slack: {users: {UBOB: \"\"}}\n", nil,
			[]string{`slack.users: UBOB maps to an empty identity`}},
		{"an empty group name", "slack: {groups: {S0DBA: \"\"}}\n", nil,
			[]string{`slack.groups: S0DBA maps to an empty group name`}},
		{"users as a list", "slack: {users: [UBOB]}\n", nil, []string{"slack.users"}},
		{"a nested identity", "slack: {users: {UBOB: {name: bob}}}\n", nil, []string{"slack.users"}},
		{"users from the environment", "slack: {users: {UBOB: bob}}\n",
			map[string]string{"DRCTL_SLACK_USERS_UBOB": "mallory"},
			[]string{"DRCTL_SLACK_USERS_UBOB", "only from the config file"}},
		{"groups from the environment", "", map[string]string{"DRCTL_SLACK_GROUPS": "S0DBA=dba"},
			[]string{"DRCTL_SLACK_GROUPS", "only from the config file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := isolate(t)
			if tc.file != "" {
				writeFile(t, filepath.Join(dir, "drctl.yaml"), tc.file)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := config.Load("", nil)
			if err == nil {
				t.Fatalf("Load = %+v, want an error", c.Slack)
			}
			for _, want := range tc.say {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Load error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// TestLoadWorkerSites: a worker's sites come from the file as a list, from
// DRCTL_WORKER_SITES comma-separated, and must be site names, once each.
func TestLoadWorkerSites(t *testing.T) {
	dir := isolate(t)
	writeFile(t, filepath.Join(dir, "drctl.yaml"), "worker:\n  sites: [east]\n")
	if c, err := config.Load("", nil); err != nil || fmt.Sprint(c.Worker.Sites) != "[east]" {
		t.Fatalf("Load = %v, %v; want the file's [east]", c.Worker.Sites, err)
	}
	t.Setenv("DRCTL_WORKER_SITES", "east,west")
	if c, err := config.Load("", nil); err != nil || fmt.Sprint(c.Worker.Sites) != "[east west]" {
		t.Fatalf("Load = %v, %v; want the environment's [east west]", c.Worker.Sites, err)
	}
	for env, want := range map[string]string{"East Coast": `worker.sites: site "East Coast" may only contain`, "east,east": "worker.sites names east twice", "any": `and is not "any"`} {
		t.Setenv("DRCTL_WORKER_SITES", env)
		if _, err := config.Load("", nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("DRCTL_WORKER_SITES=%q: %v; want an error containing %q", env, err, want)
		}
	}
}
