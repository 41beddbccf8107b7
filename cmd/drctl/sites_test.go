package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/sitewatch"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// TestPrintSitesSaysWhatNeedsPeople: a rival claim of a place, a watcher
// with another configuration, ignored views and the on_loss proposal are
// each said in words.
func TestPrintSitesSaysWhatNeedsPeople(t *testing.T) {
	now := time.Now()
	st := sitewatch.Status{SiteWatchState: workflows.SiteWatchState{
		Site: "east", State: workflows.SiteUp, Since: now, Quorum: 2, Places: []string{"east", "west", "witness"},
		Runbook: "east-failover", AutoApproveAfter: runbooks.Duration(15 * time.Minute),
		Votes: []workflows.Vote{
			{View: workflows.SiteView{Watcher: "watcher-b", From: "west"}, Heard: now, Fresh: true, Rival: "watcher-a"},
			{View: workflows.SiteView{Watcher: "watcher-witness", From: "witness"}, Heard: now, Fresh: true, OtherConfig: true},
		},
		Ignored: &workflows.Ignored{Views: 7, From: "north", Watcher: "watcher-n"},
	}}
	var b bytes.Buffer
	printSites(&b, []sitewatch.Status{st}, now)
	for _, want := range []string{
		"places east, west, witness; on loss: proposes east-failover, auto_approve_after 15m0s",
		"place west claimed by watcher-a and watcher-b",
		"watcher-witness runs a different configuration than the watch; `drctl sites reset east` applies it",
		`ignored 7 views from places not in watch.places (latest: from "north" by watcher-n)`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}
