package sitewatch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// Status is a site watch as `drctl sites` shows it: its state, and
// whether it came from the watch itself (a query, current to the moment)
// or from its memo (as of its last change, when no worker answered).
type Status struct {
	workflows.SiteWatchState
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	FromMemo   bool   `json:"from_memo,omitempty"`
}

// queryTimeout bounds the query of one watch; past it, its memo is shown.
const queryTimeout = 3 * time.Second

// List returns the running site watches (one, when site is given), by
// site. Each is queried; when no worker answers, its memo is used.
func List(ctx context.Context, c client.Client, site string) ([]Status, error) {
	query := fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running'", workflows.SiteWatchWorkflow)
	if site != "" {
		if err := runbooks.CheckName(site); err != nil {
			return nil, fmt.Errorf("site: %w", err)
		}
		query += fmt.Sprintf(" AND WorkflowId = '%s'", workflows.SiteWatchID(site))
	}
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: 1000})
	if err != nil {
		return nil, fmt.Errorf("list site watches: %w", err)
	}
	var out []Status
	for _, e := range resp.GetExecutions() {
		id := e.GetExecution().GetWorkflowId()
		st := Status{WorkflowID: id, RunID: e.GetExecution().GetRunId()}
		qctx, cancel := context.WithTimeout(ctx, queryTimeout)
		v, err := c.QueryWorkflow(qctx, id, "", workflows.QuerySiteWatch)
		cancel()
		if err == nil && v.Get(&st.SiteWatchState) == nil {
			out = append(out, st)
			continue
		}
		f := e.GetMemo().GetFields()[workflows.MemoKey]
		if f == nil || converter.GetDefaultDataConverter().FromPayload(f, &st.SiteWatchState) != nil {
			continue // started, nothing recorded yet
		}
		st.FromMemo = true
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Site, b.Site) })
	return out, nil
}

// Reset ends site's watch (terminates it, with who and why), so that the
// next view a watcher sends starts it anew with that watcher's
// configuration. A lost site is refused unless force: its incident's state
// would be forgotten, and a new watch could declare the loss again.
func Reset(ctx context.Context, c client.Client, site, reason, by string, force bool) (Status, error) {
	if err := workflows.CheckReason(reason); err != nil || reason == "" {
		return Status{}, fmt.Errorf("reset site %s: say why with --reason (it is recorded in the watch's history)", site)
	}
	sites, err := List(ctx, c, site)
	if err != nil {
		return Status{}, err
	}
	if len(sites) == 0 {
		return Status{}, fmt.Errorf("reset site %s: no watch of it is running; the next view a watcher sends starts one", site)
	}
	st := sites[0]
	if st.State == workflows.SiteLost && !force {
		inc := "its incident"
		if n := len(st.Recent); n > 0 {
			inc = "incident " + st.Recent[n-1].ID
		}
		return st, fmt.Errorf("reset site %s: it is lost (%s); a new watch would forget that and may declare the loss again. Reset after it is back, or with --force", site, inc)
	}
	if err := c.TerminateWorkflow(ctx, st.WorkflowID, st.RunID, fmt.Sprintf("reset by %s: %s", by, reason)); err != nil {
		return st, fmt.Errorf("reset site %s: terminate %s: %w", site, st.WorkflowID, err)
	}
	return st, nil
}
