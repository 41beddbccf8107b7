package tests

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/sitewatch"
	"github.com/drctl/drctl/internal/testwait"
	"github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

// siteLossRunbook is the on_loss runbook: a note, then a gate nobody
// answers in these tests.
const siteLossRunbook = `apiVersion: drctl/v1
name: east-failover
lock: %s
steps:
  - id: announce
    action: note
    with: {message: "east lost"}
  - id: go-ahead
    needs: [announce]
    approval:
      approvers: [alice]
`

// eastSite is a TCP listener standing for the site "east": it accepts and
// closes connections until cut.
type eastSite struct {
	l    net.Listener
	once sync.Once
}

func startEast(t *testing.T) *eastSite {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	e := &eastSite{l: l}
	t.Cleanup(e.cut)
	return e
}

// cut stops the listener: every later connect is refused (the power cut).
func (e *eastSite) cut() { e.once.Do(func() { e.l.Close() }) }

// siteWatchConfig watches east every 200ms, quorum 2, lost after 1s,
// proposing a run of lock.
func siteWatchConfig(t *testing.T, srv *devserver.Server, east *eastSite, lock string) config.Config {
	c := testConfig(t, srv)
	c.Watch = config.Watch{Interval: 200 * time.Millisecond, Timeout: 150 * time.Millisecond, ReportEvery: time.Second, Quorum: 2, LostAfter: time.Second, Places: []string{"east", "west", "witness"}}
	c.Sites = map[string]config.Site{"east": {
		Probes: []string{"tcp://" + east.l.Addr().String()},
		OnLoss: config.OnLoss{Runbook: writeRunbook(t, fmt.Sprintf(siteLossRunbook, lock)), Reason: "east lost"},
	}}
	return c
}

// startWatchers runs one in-process watcher per place until the test ends;
// dials, by place, replace a watcher's network.
func startWatchers(t *testing.T, srv *devserver.Server, c config.Config, dials map[string]sitewatch.DialFunc, places ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, from := range places {
		w, err := sitewatch.New(c, srv.Client(), sitewatch.Options{Identity: "watcher-" + from, From: from, Dial: dials[from], Catalog: worker.Catalog(), Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if err := w.Run(ctx); err != nil {
				t.Errorf("watcher %s: %v", from, err)
			}
		})
	}
}

// siteWatchOf reads a site's watch by query.
func siteWatchOf(t *testing.T, srv *devserver.Server, site string) (sitewatch.Status, bool) {
	sites, err := sitewatch.List(testwait.Context(t), srv.Client(), site)
	if err != nil || len(sites) != 1 || sites[0].FromMemo {
		return sitewatch.Status{}, false
	}
	return sites[0], true
}

// eastWatch reads east's site watch (by query).
func eastWatch(t *testing.T, srv *devserver.Server) (sitewatch.Status, bool) {
	return siteWatchOf(t, srv, "east")
}

// runsOf counts the executions of lock's workflow ID.
func runsOf(t *testing.T, srv *devserver.Server, lock string) int {
	t.Helper()
	resp, err := srv.Client().ListWorkflow(testwait.Context(t), &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = '%s'", workflows.WorkflowID(lock))})
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.GetExecutions())
}

// TestSiteLossProposesOneRun: watchers in east, west and a witness probe
// east; east's power is cut; exactly one run of the on_loss runbook is
// proposed, by the site watch, with the evidence of at least two places;
// it waits at its gate, and no second run follows while the loss lasts.
func TestSiteLossProposesOneRun(t *testing.T) {
	srv := startServer(t, devserver.Options{})
	east := startEast(t)
	c := siteWatchConfig(t, srv, east, "east-loss")
	startWorker(t, srv, c)
	startWatchers(t, srv, c, nil, "east", "west", "witness")

	testwait.For(t, "three places to see east up", func() bool {
		st, ok := eastWatch(t, srv)
		up := 0
		for _, v := range st.Votes {
			if v.Fresh && !v.View.Down {
				up++
			}
		}
		return ok && up == 3
	})
	east.cut()
	var st sitewatch.Status
	testwait.For(t, "east to be declared lost with a proposed run", func() bool {
		var ok bool
		st, ok = eastWatch(t, srv)
		return ok && st.State == workflows.SiteLost && len(st.Recent) == 1 && (st.Recent[0].RunID != "" || st.Recent[0].NotProposed != "")
	})
	inc := st.Recent[0]
	if inc.RunID == "" || inc.WorkflowID != workflows.WorkflowID("east-loss") {
		t.Fatalf("incident %+v", inc)
	}
	down := map[string]bool{}
	for _, v := range inc.Evidence {
		if v.Down {
			down[v.From] = true
		}
	}
	if len(down) < 2 {
		t.Fatalf("evidence from %d places saying down; want at least 2: %+v", len(down), inc.Evidence)
	}
	alice := operatorAs(srv, c, "alice")
	testwait.For(t, "the proposed run to wait at its gate", func() bool {
		s, err := alice.Status(testwait.Context(t), "east-loss")
		return err == nil && len(s.Waiting) == 1 && s.Waiting[0] == "go-ahead" && s.StartedBy == workflows.SiteWatchStarter("east")
	})
	// The watchers go on reporting east down: a few more rounds, seen by
	// the watch, still one incident and one run.
	heard := st.Signals
	testwait.For(t, "the watch to take a dozen more reports", func() bool {
		s, ok := eastWatch(t, srv)
		if ok {
			st = s
		}
		return ok && s.Signals >= heard+12
	})
	if st.Incidents != 1 || runsOf(t, srv, "east-loss") != 1 {
		t.Fatalf("incidents %d, runs %d; want one of each", st.Incidents, runsOf(t, srv, "east-loss"))
	}
}

// TestOneWatcherCutOffProposesNothing: only the east watcher's network
// fails (east itself is healthy): its down votes are recorded for longer
// than lost_after and several rounds, and nothing is declared or proposed.
func TestOneWatcherCutOffProposesNothing(t *testing.T) {
	srv := startServer(t, devserver.Options{})
	east := startEast(t)
	c := siteWatchConfig(t, srv, east, "east-cutoff")
	startWorker(t, srv, c)
	cutOff := func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("connect: network is unreachable (the watcher's own trouble)")
	}
	startWatchers(t, srv, c, map[string]sitewatch.DialFunc{"east": cutOff}, "east", "west", "witness")

	hold := c.Watch.LostAfter + 5*c.Watch.Interval
	var st sitewatch.Status
	testwait.For(t, fmt.Sprintf("east's watcher to have voted down for %s while the others see east up", hold), func() bool {
		var ok bool
		st, ok = eastWatch(t, srv)
		var eastDown, up int
		for _, v := range st.Votes {
			switch {
			case !v.Fresh:
			case v.View.From == "east" && v.View.Down && v.View.At.Sub(v.View.Since) >= hold:
				eastDown++
			case !v.View.Down:
				up++
			}
		}
		return ok && eastDown == 1 && up == 2
	})
	if st.State != workflows.SiteUp || st.Incidents != 0 || st.LosingSince != nil || runsOf(t, srv, "east-cutoff") != 0 {
		t.Fatalf("state %s, incidents %d, losing since %v, runs %d; want nothing", st.State, st.Incidents, st.LosingSince, runsOf(t, srv, "east-cutoff"))
	}
}

// TestSiteWatchResetAppliesANewConfiguration: a watcher whose lost_after
// changed is shown as running another configuration; drctl sites reset
// ends the watch, and the next view starts it with the reporting
// watcher's configuration, after which nobody differs.
func TestSiteWatchResetAppliesANewConfiguration(t *testing.T) {
	srv := startServer(t, devserver.Options{})
	east := startEast(t)
	c := siteWatchConfig(t, srv, east, "east-reset")
	startWorker(t, srv, c)
	startWatchers(t, srv, c, nil, "east", "witness")
	// The first view starts the watch with its watcher's configuration:
	// let east's and the witness's do so before west's differs.
	testwait.For(t, "the watch started by east or the witness", func() bool {
		st, ok := eastWatch(t, srv)
		return ok && len(st.Votes) > 0
	})
	changed := c
	changed.Watch.LostAfter = 2 * time.Second
	startWatchers(t, srv, changed, nil, "west")
	var first sitewatch.Status
	testwait.For(t, "west's vote marked as another configuration", func() bool {
		var ok bool
		first, ok = eastWatch(t, srv)
		differs := map[string]bool{}
		for _, v := range first.Votes {
			differs[v.View.From] = v.OtherConfig
		}
		return ok && len(first.Votes) == 3 && differs["west"] && !differs["east"] && !differs["witness"]
	})
	if _, err := sitewatch.Reset(testwait.Context(t), srv.Client(), "east", "", "alice", false); err == nil || !strings.Contains(err.Error(), "--reason") {
		t.Fatalf("reset without a reason: %v", err)
	}
	if _, err := sitewatch.Reset(testwait.Context(t), srv.Client(), "east", "lost_after 2s", "alice", false); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "a new watch run, started by some watcher's view", func() bool {
		st, ok := eastWatch(t, srv)
		return ok && st.RunID != first.RunID && len(st.Votes) == 3
	})
}

// TestSiteWatchResetRefusesALostSite: while east is lost, reset is refused
// unless forced.
func TestSiteWatchResetRefusesALostSite(t *testing.T) {
	srv := startServer(t, devserver.Options{})
	east := startEast(t)
	c := siteWatchConfig(t, srv, east, "east-reset-lost")
	c.Sites["east"] = config.Site{Probes: c.Sites["east"].Probes}
	startWorker(t, srv, c)
	startWatchers(t, srv, c, nil, "west", "witness")
	east.cut()
	testwait.For(t, "east lost", func() bool {
		st, ok := eastWatch(t, srv)
		return ok && st.State == workflows.SiteLost
	})
	if _, err := sitewatch.Reset(testwait.Context(t), srv.Client(), "east", "try", "alice", false); err == nil || !strings.Contains(err.Error(), "it is lost (incident east#1)") {
		t.Fatalf("reset of a lost site: %v", err)
	}
	if _, err := sitewatch.Reset(testwait.Context(t), srv.Client(), "east", "forced", "alice", true); err != nil {
		t.Fatalf("forced reset: %v", err)
	}
}
