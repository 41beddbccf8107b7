package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// Watch configures a site watcher (drctl watch-sites): where it stands,
// how often it probes, and the rules the site watch workflow decides a
// loss by. The decision rules (quorum, lost_after, report_every, places)
// are read by the first watcher that starts a site's watch; watchers are
// meant to share them (drctl sites shows one that differs, and drctl
// sites reset applies a new configuration).
type Watch struct {
	// From is where this watcher stands: a site's name or a witness place
	// (the lock-name rule). Watchers in one place count once towards a
	// quorum. Required by watch-sites (--from overrides it).
	From string `mapstructure:"from"`
	// Places are the places expected to vote, such as [east, west,
	// witness]: at least Quorum site names, From among them. A view from
	// any other place is ignored. Required by watch-sites.
	Places []string `mapstructure:"places"`
	// Interval is the probe round period (200ms..1m). Default 1s.
	Interval time.Duration `mapstructure:"interval"`
	// Timeout bounds each probe; it is less than Interval. Default 800ms.
	Timeout time.Duration `mapstructure:"timeout"`
	// ReportEvery is how often a watcher re-sends an unchanged view, so
	// the watch knows it is alive (Interval..10m). A view older than three
	// times this no longer counts. Default 5s.
	ReportEvery time.Duration `mapstructure:"report_every"`
	// Quorum is how many watchers in different places must see a site down
	// (2..9: one watcher never decides). Default 2.
	Quorum int `mapstructure:"quorum"`
	// LostAfter is how long the quorum must hold before the loss is
	// declared (Interval..1h). Default 3s.
	LostAfter time.Duration `mapstructure:"lost_after"`
}

// Site is a place whose loss is watched: the probes that say it is there,
// and what to propose when it is lost.
type Site struct {
	// Probes are URLs: tcp://HOST:PORT (a connect), postgres://HOST:PORT
	// (a server answering an SSLRequest; no user, no password),
	// http(s)://HOST:PORT/PATH (a GET answered 2xx, no redirect followed).
	// The site is down in a watcher's view when every probe fails.
	Probes []string `mapstructure:"probes"`
	// OnLoss is the runbook proposed when the site is declared lost; with
	// no runbook, the loss is recorded and announced, nothing proposed.
	OnLoss OnLoss `mapstructure:"on_loss"`
}

// OnLoss is the run a site's loss proposes.
type OnLoss struct {
	// Runbook is the runbook file (relative to the watcher's working
	// directory), loaded and checked when the watcher starts.
	Runbook string `mapstructure:"runbook"`
	// Params are the run's parameters. Their names reach drctl in lower
	// case (viper folds keys), so the runbook's parameters must be
	// declared in lower case to be set here.
	Params map[string]string `mapstructure:"params"`
	// Reason is the run's reason; default "site NAME lost".
	Reason string `mapstructure:"reason"`
	// AutoApproveAfter approves a gate of the proposed run nobody decided
	// within this time, recorded as such (0, or 1m..30d). Zero: people
	// decide. Only gates that say approval.auto_approve: true open so, and
	// the watcher refuses a time not shorter than such a gate's timeout.
	AutoApproveAfter time.Duration `mapstructure:"auto_approve_after"`
}

// Bounds of the watch settings and sites.
const (
	MinWatchInterval = 200 * time.Millisecond
	MaxWatchInterval = time.Minute
	MaxReportEvery   = 10 * time.Minute
	MaxLostAfter     = time.Hour
	MaxQuorum        = 9
	MaxSites         = 64
	MaxProbes        = 32
	// MaxSiteName keeps "site-watch@NAME" an identity (64 bytes).
	MaxSiteName = 40
)

// Probe schemes.
var probeSchemes = []string{"tcp", "postgres", "http", "https"}

// CheckProbe parses a probe URL: a scheme of tcp, postgres, http or https,
// an explicit host:port, and no user or password, query or fragment (a
// probe never authenticates, and the URL is recorded in every view sent,
// in the watch's history, its memo and Slack).
func CheckProbe(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the URL, which may hold a password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("a probe is not a URL: %w", err)
	}
	if u.User != nil {
		return nil, fmt.Errorf("probe %s://...@%s has a user or password; probes never authenticate (a postgres probe needs no login), so remove it", u.Scheme, u.Host)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.RawFragment != "" {
		// Not quoted: a query may hold a token.
		return nil, fmt.Errorf("probe %s://%s%s has a query or fragment; a probe URL is recorded in every view (history, memo, Slack), so it may hold no token: use a health path that needs none", u.Scheme, u.Host, u.EscapedPath())
	}
	if !slices.Contains(probeSchemes, u.Scheme) {
		return nil, fmt.Errorf("probe %q: scheme %q is not one of %s", raw, u.Scheme, strings.Join(probeSchemes, ", "))
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("probe %q: write host:port, such as %s://10.1.0.2:5432", raw, u.Scheme)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("probe %q: port %q is not 1..65535", raw, port)
	}
	if u.Scheme != "http" && u.Scheme != "https" && u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("probe %q: a %s probe has no path", raw, u.Scheme)
	}
	return u, nil
}

// CheckWatch is what watch-sites needs besides Validate: a place to stand
// among the listed places, and at least one site.
func (c Config) CheckWatch() error {
	switch {
	case c.Watch.From == "":
		return fmt.Errorf("config: watch.from is empty; set it (or --from) to where this watcher stands: a site name or a witness place")
	case len(c.Watch.Places) == 0:
		return fmt.Errorf("config: watch.places is empty; list the places whose watchers vote, such as [east, west, witness] (at least watch.quorum)")
	case !slices.Contains(c.Watch.Places, c.Watch.From):
		return fmt.Errorf("config: watch.from %s is not in watch.places (%s); a site watch ignores views from an unlisted place", c.Watch.From, strings.Join(c.Watch.Places, ", "))
	case len(c.Sites) == 0:
		return fmt.Errorf("config: no sites to watch; add sites: NAME: {probes: [tcp://HOST:PORT]}")
	}
	return nil
}

// watchProblems checks watch: and sites:, each problem naming its key.
func (c Config) watchProblems() []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	w := c.Watch
	if w.From != "" {
		if err := runbooks.CheckName(w.From); err != nil {
			add("watch.from: %v", strings.Replace(err.Error(), "runbook name", "place name", 1))
		}
	}
	if len(w.Places) > 0 && (len(w.Places) < w.Quorum || len(w.Places) > workflows.MaxPlaces) {
		add("watch.places lists %d places; list watch.quorum (%d)..%d", len(w.Places), w.Quorum, workflows.MaxPlaces)
	}
	for i, p := range w.Places {
		if err := runbooks.CheckSite(p); err != nil || len(p) > MaxSiteName {
			add("watch.places: %q is not a site name: a-z, 0-9, '.', '_' and '-', starting with a letter or digit (at most %d)", p, MaxSiteName)
		} else if slices.Contains(w.Places[:i], p) {
			add("watch.places lists %s twice", p)
		}
	}
	if w.Interval < MinWatchInterval || w.Interval > MaxWatchInterval {
		add("watch.interval is %s; use %s..%s", w.Interval, MinWatchInterval, MaxWatchInterval)
	}
	if w.Timeout <= 0 || w.Timeout >= w.Interval {
		add("watch.timeout is %s; use more than 0 and less than watch.interval (%s)", w.Timeout, w.Interval)
	}
	if w.ReportEvery < w.Interval || w.ReportEvery > MaxReportEvery {
		add("watch.report_every is %s; use watch.interval (%s)..%s", w.ReportEvery, w.Interval, MaxReportEvery)
	}
	if w.Quorum < 2 || w.Quorum > MaxQuorum {
		add("watch.quorum is %d; use 2..%d (one watcher never decides)", w.Quorum, MaxQuorum)
	}
	if w.LostAfter < w.Interval || w.LostAfter > MaxLostAfter {
		add("watch.lost_after is %s; use watch.interval (%s)..%s", w.LostAfter, w.Interval, MaxLostAfter)
	}
	if len(c.Sites) > MaxSites {
		add("sites: %d sites; at most %d", len(c.Sites), MaxSites)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Sites)) {
		s := c.Sites[name]
		key := "sites." + name
		if err := runbooks.CheckName(name); err != nil || len(name) > MaxSiteName {
			add("%s: a site name may only contain a-z, 0-9, '.', '_' and '-', starting with a letter or digit (at most %d)", key, MaxSiteName)
		}
		if len(s.Probes) == 0 || len(s.Probes) > MaxProbes {
			add("%s.probes: give 1..%d probes, such as [tcp://10.1.0.2:5432]", key, MaxProbes)
		}
		for _, p := range s.Probes {
			if _, err := CheckProbe(p); err != nil {
				add("%s.probes: %v", key, err)
			}
		}
		o := s.OnLoss
		if o.Runbook == "" && (len(o.Params) > 0 || o.Reason != "" || o.AutoApproveAfter != 0) {
			add("%s.on_loss has no runbook; set on_loss.runbook to the runbook to propose, or remove on_loss", key)
		}
		if a := o.AutoApproveAfter; a != 0 && (a < workflows.MinAutoApproveAfter || a > runbooks.MaxDuration.D()) {
			add("%s.on_loss.auto_approve_after is %s; use 0 (people decide) or %s..%s", key, a, workflows.MinAutoApproveAfter, runbooks.MaxDuration)
		}
		if err := workflows.CheckReason(o.Reason); err != nil {
			add("%s.on_loss.reason: %v", key, err)
		}
	}
	return problems
}
