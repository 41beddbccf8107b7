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
		st := Status{WorkflowID: id}
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
