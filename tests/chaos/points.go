package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drctl/drctl/runbooks"
)

// Ways a kill point is reached.
const (
	atNeeds   = iota // the steps it needs have ended (gates: decided)
	atWaiting        // the approval gate waits for a decision
	atPromote        // postgres.promote has run pg_promote (the testworker holds the step there)
	atRunning        // the step's activity has run for a while
)

type killPoint struct {
	name   string
	steps  []string // the steps that start next (before:), or the step killed in (in:)
	inside bool
	how    int
	needs  []string      // atNeeds
	gates  []string      // the approval gates among needs
	after  time.Duration // atRunning
}

func pointName(p *killPoint) string {
	if p == nil {
		return "baseline"
	}
	return p.name
}

func (p *killPoint) describe() string {
	switch p.how {
	case atWaiting:
		return "while the gate waits for a decision; the decision comes after the fresh worker started"
	case atPromote:
		return "right after pg_promote, before the step verified and recorded the promotion"
	case atRunning:
		return fmt.Sprintf("once the step has run for %s", p.after)
	}
	if len(p.needs) == 0 {
		return "right after the run started"
	}
	var parts []string
	for _, n := range p.needs {
		if slices.Contains(p.gates, n) {
			parts = append(parts, n+" was approved")
		} else {
			parts = append(parts, n+" ended")
		}
	}
	return "right after " + strings.Join(parts, ", ")
}

// killPoints derives the kill points from the runbook's graph, in the order
// a run reaches them, and lists the steps too short to be killed inside.
func killPoints(rb *runbooks.Runbook) (points []*killPoint, notInside []string) {
	var preflight []string
	for _, s := range rb.Preflight {
		preflight = append(preflight, s.ID)
	}
	needed, gate := map[string]bool{}, map[string]bool{}
	for _, s := range rb.Steps {
		for _, n := range s.Needs {
			needed[n] = true
		}
		gate[s.ID] = s.Approval != nil
	}
	byNeeds := map[string]*killPoint{}
	before := func(id string, needs []string) {
		key := strings.Join(slices.Sorted(slices.Values(needs)), ",")
		if p := byNeeds[key]; p != nil {
			p.name += "+" + id
			p.steps = append(p.steps, id)
			return
		}
		p := &killPoint{name: "before:" + id, steps: []string{id}, how: atNeeds, needs: needs}
		for _, n := range needs {
			if gate[n] {
				p.gates = append(p.gates, n)
			}
		}
		byNeeds[key] = p
		points = append(points, p)
	}
	var leaves []string
	for i, s := range append(append([]runbooks.Step{}, rb.Preflight...), rb.Steps...) {
		isPreflight := i < len(rb.Preflight)
		needs := s.Needs
		switch {
		case isPreflight:
			needs = nil
		case len(needs) == 0:
			needs = preflight
		}
		before(s.ID, needs)
		if !isPreflight && !needed[s.ID] {
			leaves = append(leaves, s.ID)
		}
		in := &killPoint{name: "in:" + s.ID, steps: []string{s.ID}, inside: true}
		switch {
		case s.Approval != nil:
			in.how = atWaiting
		case s.Action == "postgres.promote":
			in.how = atPromote
		case s.Action == "http.check" && checkLength(s) > 0:
			in.how, in.after = atRunning, checkLength(s)/2
		default:
			notInside = append(notInside, s.ID)
			continue
		}
		points = append(points, in)
	}
	end := &killPoint{name: "before:end", how: atNeeds, needs: leaves}
	for _, n := range leaves {
		if gate[n] {
			end.gates = append(end.gates, n)
		}
	}
	points = append(points, end)
	return points, notInside
}

// checkLength is how long an http.check step takes at least when the
// service is healthy: (successes-1) intervals; 0 when unknown or instant.
func checkLength(s runbooks.Step) time.Duration {
	n, err := strconv.Atoi(fmt.Sprint(s.With["successes"]))
	if err != nil || n < 2 {
		return 0
	}
	d, err := time.ParseDuration(fmt.Sprint(s.With["interval"]))
	if err != nil {
		return 0
	}
	return time.Duration(n-1) * d
}

// selectPoints picks the points the -points flag names: a point's full
// name, or before:STEP for any step of a group that starts together.
func selectPoints(all []*killPoint, spec string) ([]*killPoint, error) {
	if spec == "all" {
		return all, nil
	}
	var out []*killPoint
	for _, want := range strings.Split(spec, ",") {
		want = strings.TrimSpace(want)
		i := slices.IndexFunc(all, func(p *killPoint) bool {
			if p.name == want {
				return true
			}
			prefix := "before:"
			if p.inside {
				prefix = "in:"
			}
			return slices.ContainsFunc(p.steps, func(s string) bool { return prefix+s == want })
		})
		if i < 0 {
			names := make([]string, len(all))
			for j, p := range all {
				names[j] = p.name
			}
			return nil, fmt.Errorf("no kill point %q; there are: %s", want, strings.Join(names, ", "))
		}
		if !slices.Contains(out, all[i]) {
			out = append(out, all[i])
		}
	}
	return out, nil
}
