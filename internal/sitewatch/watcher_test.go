package sitewatch_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/sitewatch"
	"github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

// gatedRunbook has one gate; %s is its approval's extra lines.
const gatedRunbook = `apiVersion: drctl/v1
name: east-failover
lock: east-failover
steps:
  - id: go-ahead
    approval:
      approvers: [alice]
%s`

// signalRecorder is a Temporal client that records what a watcher sends.
type signalRecorder struct {
	client.Client
	views  []workflows.SiteView
	inputs []workflows.SiteWatchInput
}

func (r *signalRecorder) SignalWithStartWorkflow(_ context.Context, _, _ string, arg any, _ client.StartWorkflowOptions, _ any, args ...any) (client.WorkflowRun, error) {
	r.views = append(r.views, arg.(workflows.SiteView))
	r.inputs = append(r.inputs, args[0].(workflows.SiteWatchInput))
	return nil, nil
}

// watchConfig watches east from west, with on_loss running the gated
// runbook with gate's extra lines.
func watchConfig(t *testing.T, gate string, autoApproveAfter time.Duration) config.Config {
	t.Helper()
	rb := filepath.Join(t.TempDir(), "east-failover.yaml")
	if err := os.WriteFile(rb, []byte(strings.ReplaceAll(gatedRunbook, "%s", gate)), 0o600); err != nil {
		t.Fatal(err)
	}
	c := config.Defaults()
	c.Watch.From, c.Watch.Places = "west", []string{"witness", "west", "east"}
	c.Sites = map[string]config.Site{"east": {
		Probes: []string{"tcp://10.1.0.2:5432"},
		OnLoss: config.OnLoss{Runbook: rb, AutoApproveAfter: autoApproveAfter},
	}}
	return c
}

// TestNewChecksAutoApproveAfter: auto_approve_after needs a gate that
// opts in and would not time out first, and is at least a minute.
func TestNewChecksAutoApproveAfter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		gate  string
		after time.Duration
		want  string
	}{
		{"no gate opts in", "", 5 * time.Minute, "no approval gate of runbook east-failover opts in"},
		{"gate times out first", "      auto_approve: true\n      timeout: 5m\n", 5 * time.Minute, "not shorter than gate go-ahead's timeout (5m0s)"},
		{"too short", "      auto_approve: true\n", 30 * time.Second, "auto_approve_after is 30s"},
		{"opted in", "      auto_approve: true\n      timeout: 10m\n", 5 * time.Minute, ""},
		{"none asked", "", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sitewatch.New(watchConfig(t, tc.gate, tc.after), &signalRecorder{}, sitewatch.Options{Catalog: worker.Catalog()})
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v; want %q", err, tc.want)
			}
		})
	}
}

// TestNewReadsAllowedSigners: with approvals.allowed_signers set, a file
// that cannot be read stops the watcher; one that can is in the proposal.
func TestNewReadsAllowedSigners(t *testing.T) {
	c := watchConfig(t, "", 0)
	c.Approvals.AllowedSigners = filepath.Join(t.TempDir(), "missing")
	if _, err := sitewatch.New(c, &signalRecorder{}, sitewatch.Options{Catalog: worker.Catalog()}); err == nil || !strings.Contains(err.Error(), "approvals.allowed_signers") {
		t.Fatalf("err = %v; want the allowed signers file refused", err)
	}
	c.Approvals.AllowedSigners = filepath.Join(t.TempDir(), "allowed_signers")
	line := "alice namespaces=\"" + workflows.SignatureNamespace + "\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
	if err := os.WriteFile(c.Approvals.AllowedSigners, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	rec := &signalRecorder{}
	w, err := sitewatch.New(c, rec, sitewatch.Options{Catalog: worker.Catalog(), Dial: refuse})
	if err != nil {
		t.Fatal(err)
	}
	w.Round(context.Background())
	if len(rec.inputs) != 1 || len(rec.inputs[0].OnLoss.Signers) != 1 || rec.inputs[0].OnLoss.Signers[0].Identity != "alice" {
		t.Fatalf("inputs %+v; want alice's key in on_loss", rec.inputs)
	}
}

// TestRoundSendsCappedViewsWithDigest: a view carries the digest of the
// input it would start the watch with (places sorted), and is capped
// before it is sent.
func TestRoundSendsCappedViewsWithDigest(t *testing.T) {
	c := watchConfig(t, "", 0)
	east := c.Sites["east"]
	east.Probes = nil
	for i := range config.MaxProbes {
		east.Probes = append(east.Probes, fmt.Sprintf("tcp://10.1.0.2:%d", 1000+i))
	}
	c.Sites["east"] = east
	rec := &signalRecorder{}
	w, err := sitewatch.New(c, rec, sitewatch.Options{Identity: strings.Repeat("x", 100), Catalog: worker.Catalog(), Dial: refuse})
	if err != nil {
		t.Fatal(err)
	}
	w.Round(context.Background())
	if len(rec.views) != 1 {
		t.Fatalf("sent %d views", len(rec.views))
	}
	v, in := rec.views[0], rec.inputs[0]
	if v.Digest == "" || v.Digest != workflows.SiteWatchDigest(in) || strings.Join(in.Places, ",") != "east,west,witness" {
		t.Fatalf("digest %q, input %+v", v.Digest, in)
	}
	if !v.Down || len(v.Watcher) > workflows.MaxViewName || len(v.Probes) != config.MaxProbes {
		t.Fatalf("view %+v", v)
	}
	for _, p := range v.Probes {
		if len(p.Error) > workflows.MaxViewText {
			t.Fatalf("probe error of %d bytes", len(p.Error))
		}
	}
}

// refuse fails every dial with a long error.
func refuse(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New(strings.Repeat("unreachable ", 100))
}
