package config_test

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/config"
)

const sitesFile = `
watch:
  from: west
  places: [east, west, witness]
  interval: 500ms
  timeout: 300ms
  report_every: 2s
  quorum: 2
  lost_after: 3s
sites:
  east:
    probes: ["tcp://10.1.0.2:5432", "postgres://10.1.0.2:5432", "http://10.1.0.2:8080/health"]
    on_loss:
      runbook: runbooks/site-failover.yaml
      params: {from: east, To_Site: west}
      reason: "east lost"
      auto_approve_after: 5m
  west:
    probes: ["tcp://10.2.0.2:5432"]
`

// TestLoadSites reads watch: and sites: through the real loader; param
// names arrive lower-cased (viper folds keys), which the doc says.
func TestLoadSites(t *testing.T) {
	dir := isolate(t)
	c, err := config.Load(writeFile(t, filepath.Join(dir, "drctl.yaml"), sitesFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	w := c.Watch
	if w.From != "west" || strings.Join(w.Places, ",") != "east,west,witness" || w.Interval != 500*time.Millisecond || w.Timeout != 300*time.Millisecond || w.ReportEvery != 2*time.Second || w.Quorum != 2 || w.LostAfter != 3*time.Second {
		t.Fatalf("watch %+v", w)
	}
	east := c.Sites["east"]
	if len(east.Probes) != 3 || east.OnLoss.Runbook != "runbooks/site-failover.yaml" || east.OnLoss.Reason != "east lost" || east.OnLoss.AutoApproveAfter != 5*time.Minute {
		t.Fatalf("east %+v", east)
	}
	if east.OnLoss.Params["from"] != "east" || east.OnLoss.Params["to_site"] != "west" || len(east.OnLoss.Params) != 2 {
		t.Fatalf("params %v; want keys lower-cased", east.OnLoss.Params)
	}
	if len(c.Sites["west"].Probes) != 1 || c.Sites["west"].OnLoss.Runbook != "" {
		t.Fatalf("west %+v", c.Sites["west"])
	}
	if err := c.CheckWatch(); err != nil {
		t.Fatal(err)
	}
}

// TestLoadSitesDefaults: with no watch: section the defaults hold, and
// watch-sites asks for a place and sites.
func TestLoadSitesDefaults(t *testing.T) {
	isolate(t)
	c, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	w := c.Watch
	if len(w.Places) != 0 {
		t.Fatalf("places %v; want none by default", w.Places)
	}
	w.Places = nil
	if !reflect.DeepEqual(w, config.Defaults().Watch) || w.Quorum != 2 || w.Interval != time.Second {
		t.Fatalf("watch %+v", c.Watch)
	}
	if err := c.CheckWatch(); err == nil || !strings.Contains(err.Error(), "watch.from is empty") {
		t.Fatalf("CheckWatch: %v", err)
	}
	c.Watch.From = "witness"
	if err := c.CheckWatch(); err == nil || !strings.Contains(err.Error(), "watch.places is empty") {
		t.Fatalf("CheckWatch: %v", err)
	}
	c.Watch.Places = []string{"east", "west"}
	if err := c.CheckWatch(); err == nil || !strings.Contains(err.Error(), "watch.from witness is not in watch.places (east, west)") {
		t.Fatalf("CheckWatch: %v", err)
	}
	c.Watch.Places = append(c.Watch.Places, "witness")
	if err := c.CheckWatch(); err == nil || !strings.Contains(err.Error(), "no sites") {
		t.Fatalf("CheckWatch: %v", err)
	}
}

// TestLoadSitesRefuses: each mistake is refused naming the key to change.
func TestLoadSitesRefuses(t *testing.T) {
	site := func(body string) string { return "sites:\n  east:\n" + body }
	probes := "    probes: [\"tcp://10.1.0.2:5432\"]\n"
	for _, tc := range []struct{ name, file, want string }{
		{"typo in a site", site("    probe: [\"tcp://10.1.0.2:5432\"]\n"), "unknown key sites.east.probe (did you mean sites.east.probes?)"},
		{"typo in on_loss", site(probes + "    on_loss: {runbok: x.yaml}\n"), "unknown key sites.east.on_loss.runbok (did you mean sites.east.on_loss.runbook?)"},
		{"typo in watch", "watch: {quorom: 2}\n", "unknown key watch.quorom (did you mean watch.quorum?)"},
		{"quorum of one", "watch: {quorum: 1}\n", "watch.quorum is 1; use 2..9 (one watcher never decides)"},
		{"quorum too large", "watch: {quorum: 100}\n", "watch.quorum is 100"},
		{"interval too short", "watch: {interval: 10ms, timeout: 5ms}\n", "watch.interval is 10ms; use 200ms..1m0s"},
		{"interval too long", "watch: {interval: 2m}\n", "watch.interval is 2m0s"},
		{"timeout not below interval", "watch: {interval: 1s, timeout: 1s}\n", "watch.timeout is 1s; use more than 0 and less than watch.interval"},
		{"report_every below interval", "watch: {report_every: 100ms}\n", "watch.report_every is 100ms"},
		{"lost_after too long", "watch: {lost_after: 2h}\n", "watch.lost_after is 2h0m0s"},
		{"bad place", "watch: {from: West Coast}\n", "watch.from: place name"},
		{"bad site name", "sites:\n  east/1:\n" + probes, "sites.east/1: a site name may only contain"},
		{"no probes", site("    probes: []\n"), "sites.east.probes: give 1..32 probes"},
		{"probe with a password", site("    probes: [\"postgres://drctl:hunter2@10.1.0.2:5432\"]\n"), "has a user or password"},
		{"probe scheme", site("    probes: [\"udp://10.1.0.2:53\"]\n"), `scheme "udp" is not one of tcp, postgres, http, https`},
		{"probe without port", site("    probes: [\"http://10.1.0.2/health\"]\n"), "write host:port"},
		{"on_loss without runbook", site(probes + "    on_loss: {reason: x}\n"), "sites.east.on_loss has no runbook"},
		{"auto_approve_after too long", site(probes + "    on_loss: {runbook: x.yaml, auto_approve_after: 800h}\n"), "sites.east.on_loss.auto_approve_after is 800h0m0s; use 0 (people decide) or 1m0s..720h0m0s"},
		{"auto_approve_after too short", site(probes + "    on_loss: {runbook: x.yaml, auto_approve_after: 30s}\n"), "sites.east.on_loss.auto_approve_after is 30s; use 0 (people decide) or 1m0s"},
		{"probe with a query", site("    probes: [\"https://10.1.0.2:443/health?token=hunter2\"]\n"), "probe https://10.1.0.2:443/health has a query or fragment"},
		{"probe with a fragment", site("    probes: [\"https://10.1.0.2:443/health#hunter2\"]\n"), "has a query or fragment"},
		{"probe with an empty query", site("    probes: [\"http://10.1.0.2:80/health?\"]\n"), "has a query or fragment"},
		{"fewer places than the quorum", "watch: {quorum: 3, places: [east, west]}\n", "watch.places lists 2 places; list watch.quorum (3)..16"},
		{"place twice", "watch: {places: [east, west, east]}\n", "watch.places lists east twice"},
		{"bad place", "watch: {places: [east, West Coast]}\n", `watch.places: "West Coast" is not a site name`},
		{"reason with a newline", site(probes + "    on_loss: {runbook: x.yaml, reason: \"a\\nb\"}\n"), "sites.east.on_loss.reason: reason has the control character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := isolate(t)
			_, err := config.Load(writeFile(t, filepath.Join(dir, "drctl.yaml"), tc.file), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}
