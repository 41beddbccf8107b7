// Package config is drctl's one typed configuration and the one place that
// reads it: a YAML file, then DRCTL_* environment variables, then flags, each
// overriding the one before (viper). Other packages receive the plain
// Config; none of them imports viper. Secrets are never values here, only
// references (an environment variable or a file to read them from).
//
// One exception to the layering: slack.users and slack.groups are keyed by
// case-sensitive Slack IDs, which viper would lower-case and which no
// variable name can spell, so they come from the file alone, keys as
// written.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	osuser "os/user"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/drctl/drctl/activities/webhook"
	"github.com/drctl/drctl/runbooks"
)

// Config is everything a drctl worker or CLI needs to know.
type Config struct {
	Temporal Temporal `mapstructure:"temporal"`
	// Identity names the operator or worker in histories and approvals.
	// Default: $USER@hostname.
	Identity  string    `mapstructure:"identity"`
	Worker    Worker    `mapstructure:"worker"`
	Telemetry Telemetry `mapstructure:"telemetry"`
	Slack     Slack     `mapstructure:"slack"`
	Approvals Approvals `mapstructure:"approvals"`
	Readiness Readiness `mapstructure:"readiness"`
	// Watch and Sites configure site-loss detection (drctl watch-sites;
	// see sites.go).
	Watch Watch `mapstructure:"watch"`
	// Sites are the places a watcher probes, by name (the lock-name rule).
	// Viper lower-cases keys, so names are lower-case anyway.
	Sites map[string]Site `mapstructure:"sites"`
}

// Readiness configures where a worker announces readiness changes besides
// Slack: a generic webhook, sent JSON signed with HMAC-SHA256 (see
// activities/webhook). Off unless a URL is set.
type Readiness struct {
	// WebhookURL is https, or http to a loopback address.
	WebhookURL string `mapstructure:"webhook_url"`
	// WebhookSecret signs each request (required with a URL).
	WebhookSecret SecretRef `mapstructure:"webhook_secret"`
}

// Approvals configures signed CLI decisions (see workflows.Signer).
type Approvals struct {
	// AllowedSigners is an ssh-keygen allowed-signers file (PRINCIPALS
	// KEYTYPE BASE64 per line) read by `drctl run`: the runs it starts
	// accept CLI decisions only when signed by a key listed for the
	// decider. Empty: decisions are not signed (identity is asserted).
	AllowedSigners string `mapstructure:"allowed_signers"`
	// SignKey is the key `drctl approve`/`reject` sign with: a private key
	// file (unencrypted), or a public key file (.pub) whose private half
	// is in ssh-agent (SSH_AUTH_SOCK), as git's user.signingKey. The
	// --sign-key flag overrides it.
	SignKey string `mapstructure:"sign_key"`
}

// Slack configures approvals and progress in Slack. Off unless a bot token
// is configured; Slack being down or off never blocks a run (the CLI path
// keeps working).
type Slack struct {
	// Channel is where runs post when their runbook names none (ID or #name).
	Channel string `mapstructure:"channel"`
	// BotToken (xoxb-), AppToken (xapp-, Socket Mode) and SigningSecret
	// (HTTP interactivity) are references to secrets, never the secrets.
	BotToken      SecretRef `mapstructure:"bot_token"`
	AppToken      SecretRef `mapstructure:"app_token"`
	SigningSecret SecretRef `mapstructure:"signing_secret"`
	// Mode receives button clicks: "http" (an interactivity endpoint on
	// Listen) or "socket" (Socket Mode, no public endpoint). Default http.
	Mode   string `mapstructure:"mode"`
	Listen string `mapstructure:"listen"` // default 127.0.0.1:8089
	// Users maps Slack user IDs to drctl identities (the names runbooks
	// list as approvers). A click by an unmapped user is refused.
	//
	// Keys are Slack IDs exactly as Slack shows them (U012AB3CD, or
	// W012AB3CD on Enterprise Grid): case-sensitive and upper-case. Unlike
	// every other key, they are read from the config file only, and Load
	// keeps their case (viper would fold them to lower case, and no click
	// would ever match). DRCTL_SLACK_USERS* variables are refused rather
	// than ignored. Validate refuses a key that cannot be a user ID and an
	// empty identity.
	Users map[string]string `mapstructure:"users"`
	// Groups maps Slack user group IDs (S012AB3CD; same rules as Users) to
	// approver group names: a runbook's "group:NAME" approver matches
	// members of the mapped user group.
	Groups map[string]string `mapstructure:"groups"`
	// GroupTTL is how long a user group's membership is trusted before it
	// is read again. A user removed from a group can approve for at most
	// this long afterwards. Default 1m.
	GroupTTL time.Duration `mapstructure:"group_ttl"`
	// APIURL overrides Slack's API base URL (tests use slacktest).
	APIURL string `mapstructure:"api_url"`
}

// Enabled reports whether Slack is configured.
func (s Slack) Enabled() bool { return s.BotToken.IsSet() }

// Temporal says where the durable engine is.
type Temporal struct {
	Address   string `mapstructure:"address"`    // default localhost:7233
	Namespace string `mapstructure:"namespace"`  // default "default"
	TaskQueue string `mapstructure:"task_queue"` // default "drctl"
	TLS       TLS    `mapstructure:"tls"`
	// APIKey is a reference to a Temporal Cloud API key (env or file).
	APIKey SecretRef `mapstructure:"api_key"`
}

// TLS configures the connection to Temporal (mTLS when cert and key are set).
type TLS struct {
	Enabled    bool   `mapstructure:"enabled"`
	CertFile   string `mapstructure:"cert_file"`
	KeyFile    string `mapstructure:"key_file"`
	CAFile     string `mapstructure:"ca_file"`
	ServerName string `mapstructure:"server_name"`
}

// SecretRef names where a secret is read from; at most one is set.
type SecretRef struct {
	Env  string `mapstructure:"env"`
	File string `mapstructure:"file"`
}

// IsSet reports whether the reference names a source.
func (s SecretRef) IsSet() bool { return s.Env != "" || s.File != "" }

// Read returns the secret. Errors name the source, never the value.
func (s SecretRef) Read() (string, error) {
	switch {
	case s.Env != "" && s.File != "":
		return "", errors.New("a secret reference names both env and file; keep one")
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok || v == "" {
			return "", fmt.Errorf("environment variable %s is not set", s.Env)
		}
		return v, nil
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("read secret file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", errors.New("no secret source set")
}

// Worker tunes the worker process.
type Worker struct {
	// StopTimeout is how long a stopping worker lets running actions finish
	// before abandoning them to a retry elsewhere. Default 10s.
	StopTimeout time.Duration `mapstructure:"stop_timeout"`
	// StickyTimeout is how long a workflow task waits for the worker that
	// ran the workflow last before any worker may take it. Low values make a
	// dead worker's runs move on sooner. Default 1s.
	StickyTimeout time.Duration `mapstructure:"sticky_timeout"`
	// Sites are where the worker runs (drctl worker --site; usually one,
	// more for a host that reaches several, like the one-machine lab).
	// Besides the shared task queue it polls each site's (TASK_QUEUE@SITE),
	// where the actions that need the site's local reach on its targets
	// are sent. Empty: it runs only what may run anywhere.
	Sites []string `mapstructure:"sites"`
}

// Telemetry configures OpenTelemetry; everything is off by default.
type Telemetry struct {
	// Traces: "none" (default), "stdout" or "otlp".
	Traces string `mapstructure:"traces"`
	// Metrics: "none" (default), "stdout", "otlp" or "prometheus" (the
	// worker serves /metrics on MetricsListen for a Prometheus scrape).
	Metrics string `mapstructure:"metrics"`
	// MetricsListen is host:port the worker serves /metrics on when Metrics
	// is "prometheus". Default 127.0.0.1:9464 (loopback: expose it
	// deliberately); port 0 picks a free port.
	MetricsListen string `mapstructure:"metrics_listen"`
	// OTLPEndpoint is host:port of an OTLP/gRPC collector; default is the
	// exporter's (localhost:4317) or OTEL_EXPORTER_OTLP_ENDPOINT.
	OTLPEndpoint string `mapstructure:"otlp_endpoint"`
	// Insecure sends OTLP without TLS (a local collector).
	Insecure bool `mapstructure:"insecure"`
}

// Defaults returns the configuration used when nothing is set.
func Defaults() Config {
	return Config{
		Temporal: Temporal{Address: "localhost:7233", Namespace: "default", TaskQueue: "drctl"},
		Identity: defaultIdentity(),
		Worker:   Worker{StopTimeout: 10 * time.Second, StickyTimeout: time.Second},
		Telemetry: Telemetry{
			Traces:        "none",
			Metrics:       "none",
			MetricsListen: "127.0.0.1:9464",
		},
		Slack: Slack{Mode: "http", Listen: "127.0.0.1:8089", GroupTTL: time.Minute},
		Watch: Watch{Interval: time.Second, Timeout: 800 * time.Millisecond, ReportEvery: 5 * time.Second, Quorum: 2, LostAfter: 3 * time.Second},
	}
}

func defaultIdentity() string {
	user := os.Getenv("USER")
	if user == "" {
		if u, err := osuser.Current(); err == nil {
			user = u.Username
		} else {
			user = "unknown"
		}
	}
	host, err := os.Hostname()
	if err != nil {
		return user
	}
	return user + "@" + host
}

// Flag names bound to configuration keys. Commands define the flags they
// take; Load binds whichever are present.
var flagKeys = map[string]string{
	"address":    "temporal.address",
	"namespace":  "temporal.namespace",
	"task-queue": "temporal.task_queue",
	"as":         "identity",
}

// Load reads the configuration: defaults, then the file (path given, or
// ./drctl.yaml, or $HOME/.config/drctl/drctl.yaml when present), then DRCTL_*
// environment variables (DRCTL_TEMPORAL_ADDRESS for temporal.address), then
// flags. slack.users and slack.groups are taken from the file with their
// keys' case intact; DRCTL_SLACK_USERS* and DRCTL_SLACK_GROUPS* variables
// are an error.
func Load(path string, flags *pflag.FlagSet) (Config, error) {
	v := viper.New()
	d := Defaults()
	v.SetDefault("temporal.address", d.Temporal.Address)
	v.SetDefault("temporal.namespace", d.Temporal.Namespace)
	v.SetDefault("temporal.task_queue", d.Temporal.TaskQueue)
	v.SetDefault("temporal.tls.enabled", false)
	v.SetDefault("temporal.tls.cert_file", "")
	v.SetDefault("temporal.tls.key_file", "")
	v.SetDefault("temporal.tls.ca_file", "")
	v.SetDefault("temporal.tls.server_name", "")
	v.SetDefault("temporal.api_key.env", "")
	v.SetDefault("temporal.api_key.file", "")
	v.SetDefault("identity", d.Identity)
	v.SetDefault("worker.stop_timeout", d.Worker.StopTimeout)
	v.SetDefault("worker.sticky_timeout", d.Worker.StickyTimeout)
	v.SetDefault("worker.sites", d.Worker.Sites)
	v.SetDefault("telemetry.traces", d.Telemetry.Traces)
	v.SetDefault("telemetry.metrics", d.Telemetry.Metrics)
	v.SetDefault("telemetry.metrics_listen", d.Telemetry.MetricsListen)
	v.SetDefault("telemetry.otlp_endpoint", "")
	v.SetDefault("telemetry.insecure", false)
	v.SetDefault("slack.channel", "")
	v.SetDefault("slack.bot_token.env", "")
	v.SetDefault("slack.bot_token.file", "")
	v.SetDefault("slack.app_token.env", "")
	v.SetDefault("slack.app_token.file", "")
	v.SetDefault("slack.signing_secret.env", "")
	v.SetDefault("slack.signing_secret.file", "")
	v.SetDefault("slack.mode", "http")
	v.SetDefault("slack.listen", "127.0.0.1:8089")
	v.SetDefault("slack.group_ttl", time.Minute)
	v.SetDefault("slack.api_url", "")
	v.SetDefault("approvals.allowed_signers", "")
	v.SetDefault("approvals.sign_key", "")
	v.SetDefault("readiness.webhook_url", "")
	v.SetDefault("readiness.webhook_secret.env", "")
	v.SetDefault("readiness.webhook_secret.file", "")
	v.SetDefault("watch.from", "")
	v.SetDefault("watch.places", []string{})
	v.SetDefault("watch.interval", d.Watch.Interval)
	v.SetDefault("watch.timeout", d.Watch.Timeout)
	v.SetDefault("watch.report_every", d.Watch.ReportEvery)
	v.SetDefault("watch.quorum", d.Watch.Quorum)
	v.SetDefault("watch.lost_after", d.Watch.LostAfter)

	v.SetEnvPrefix("DRCTL")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()

	if path == "" {
		path = os.Getenv("DRCTL_CONFIG")
	}
	if path == "" {
		path = findConfigFile()
	}
	if err := refuseSlackIDEnv(os.Environ()); err != nil {
		return Config{}, err
	}
	// The file is read once; viper and the case-preserving read of the
	// Slack ID maps see the same bytes.
	var file []byte
	if path != "" {
		var err error
		if file, err = os.ReadFile(path); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
		v.SetConfigType("yaml")
		if err := v.ReadConfig(bytes.NewReader(file)); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if flags != nil {
		for flag, key := range flagKeys {
			if f := flags.Lookup(flag); f != nil {
				if err := v.BindPFlag(key, f); err != nil {
					return Config{}, err
				}
			}
		}
	}
	if err := unknownKeys(v.AllKeys()); err != nil {
		return Config{}, err
	}
	var c Config
	if err := v.UnmarshalExact(&c); err != nil {
		return Config{}, fmt.Errorf("config: %w (see the Configuration section of the README for the keys)", err)
	}
	if path != "" {
		if err := keepSlackIDCase(file, &c.Slack); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	return c, c.Validate()
}

// findConfigFile returns ./drctl.yaml or ~/.config/drctl/drctl.yaml,
// whichever exists first, or "".
func findConfigFile() string {
	candidates := []string{"drctl.yaml"}
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, ".config", "drctl", "drctl.yaml"))
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c
		}
	}
	return ""
}

// Validate checks values that would otherwise fail later and obscurely.
func (c Config) Validate() error {
	var problems []string
	if c.Temporal.Address == "" {
		problems = append(problems, "temporal.address is empty; set it to host:port of your Temporal frontend")
	}
	if c.Temporal.TaskQueue == "" {
		problems = append(problems, "temporal.task_queue is empty")
	}
	for i, site := range c.Worker.Sites {
		if err := runbooks.CheckSite(site); err != nil {
			problems = append(problems, "worker.sites: "+err.Error())
		} else if slices.Contains(c.Worker.Sites[:i], site) {
			problems = append(problems, fmt.Sprintf("worker.sites names %s twice", site))
		}
	}
	if c.Temporal.APIKey.Env != "" && c.Temporal.APIKey.File != "" {
		problems = append(problems, "temporal.api_key names both env and file; keep one")
	}
	if (c.Temporal.TLS.CertFile == "") != (c.Temporal.TLS.KeyFile == "") {
		problems = append(problems, "temporal.tls needs both cert_file and key_file for mTLS, or neither")
	}
	switch c.Telemetry.Traces {
	case "", "none", "stdout", "otlp":
	default:
		problems = append(problems, fmt.Sprintf("telemetry.traces is %q; use none, stdout or otlp", c.Telemetry.Traces))
	}
	switch c.Telemetry.Metrics {
	case "", "none", "stdout", "otlp":
	case "prometheus":
		if _, _, err := net.SplitHostPort(c.Telemetry.MetricsListen); err != nil {
			problems = append(problems, fmt.Sprintf("telemetry.metrics_listen is %q; use host:port, such as 127.0.0.1:9464", c.Telemetry.MetricsListen))
		}
	default:
		problems = append(problems, fmt.Sprintf("telemetry.metrics is %q; use none, stdout, otlp or prometheus", c.Telemetry.Metrics))
	}
	switch c.Slack.Mode {
	case "", "http", "socket":
	default:
		problems = append(problems, fmt.Sprintf("slack.mode is %q; use http or socket", c.Slack.Mode))
	}
	problems = append(problems, slackIDProblems("slack.users", c.Slack.Users, slackUserID, "a Slack user ID (U… or W…)", "identity")...)
	problems = append(problems, slackIDProblems("slack.groups", c.Slack.Groups, slackGroupID, "a Slack user group ID (S…)", "group name")...)
	if u := c.Readiness.WebhookURL; u != "" {
		if err := webhook.CheckURL(u); err != nil {
			problems = append(problems, "readiness.webhook_url: "+err.Error())
		}
		if !c.Readiness.WebhookSecret.IsSet() {
			problems = append(problems, "readiness.webhook_url is set but readiness.webhook_secret is not; set webhook_secret: {env: NAME} so receivers can check each request")
		}
	}
	problems = append(problems, c.watchProblems()...)
	if len(problems) > 0 {
		return fmt.Errorf("config: %s", strings.Join(problems, "; "))
	}
	return nil
}

// unknownKeys reports every configuration key Config does not have, each
// with the closest known key when one is a plausible typo.
func unknownKeys(keys []string) error {
	leaves, open, sections := map[string]bool{}, map[string]bool{}, map[string]bool{}
	configKeys(reflect.TypeOf(Config{}), "", leaves, open, sections)
	known := slices.Sorted(maps.Keys(leaves))
	var problems []string
	for _, k := range keys {
		// sites.east.probes is checked as sites.*.probes.
		pattern, name := wildcard(k, sections)
		if leaves[pattern] {
			continue
		}
		if openPrefix(pattern, open) {
			continue // a key inside a map (slack.users.NAME)
		}
		p := "unknown key " + k
		if c, ok := runbooks.Closest(pattern, known); ok {
			p += fmt.Sprintf(" (did you mean %s?)", strings.Replace(c, "*", name, 1))
		}
		problems = append(problems, p)
	}
	if len(problems) == 0 {
		return nil
	}
	slices.Sort(problems)
	return fmt.Errorf("config: %s; the Configuration section of the README lists the keys", strings.Join(problems, "; "))
}

// configKeys collects the dotted keys of t's mapstructure fields: leaves,
// the keys of map fields, under which any key is allowed (open), and the
// keys of maps of sections (sites), whose entries' keys are collected as
// KEY.*.FIELD.
func configKeys(t reflect.Type, prefix string, leaves, open, sections map[string]bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if name == "" {
			continue
		}
		key := prefix + name
		switch {
		case f.Type.Kind() == reflect.Map && f.Type.Elem().Kind() == reflect.Struct:
			// A map of sections (sites.NAME): each entry has the
			// struct's keys, checked under the pattern key.*.
			sections[key] = true
			leaves[key+".*"] = true // an empty entry; Validate says what it lacks
			configKeys(f.Type.Elem(), key+".*.", leaves, open, sections)
		case f.Type.Kind() == reflect.Map:
			open[key] = true
		case f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct:
			configKeys(f.Type.Elem(), key+".", leaves, open, sections)
		case f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Time{}):
			configKeys(f.Type, key+".", leaves, open, sections)
		default:
			leaves[key] = true
		}
	}
}

// wildcard returns k with the entry name of a map of sections replaced by
// "*" (sites.east.probes -> sites.*.probes), and the name replaced; k and
// "" when k lies in no such map.
func wildcard(k string, sections map[string]bool) (string, string) {
	for section := range sections {
		rest, ok := strings.CutPrefix(k, section+".")
		if !ok {
			continue
		}
		name, tail, ok := strings.Cut(rest, ".")
		if !ok {
			return section + ".*", name
		}
		return section + ".*." + tail, name
	}
	return k, ""
}

// openPrefix reports whether k lies below a map field's key.
func openPrefix(k string, open map[string]bool) bool {
	for p := range open {
		if strings.HasPrefix(k, p+".") {
			return true
		}
	}
	return false
}
