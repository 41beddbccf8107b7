package runbooks

import "slices"

// Stages orders the runbook's steps (not its preflight checks, which all run
// first) into stages: every step runs after all the steps it needs, and the
// steps of one stage have no edge between them, so they may run in parallel.
// Stage k holds the steps whose longest chain of needs is k long; within a
// stage, steps keep their order in the file. On a runbook that Validate
// refused, needs that name no step are ignored and steps on a cycle (or
// after one) are left out.
func Stages(rb *Runbook) [][]string {
	index := map[string]int{}
	for i, s := range rb.Steps {
		if _, dup := index[s.ID]; !dup {
			index[s.ID] = i
		}
	}
	// needs[i] is the set of step indexes step i waits for.
	needs := make([]map[int]bool, len(rb.Steps))
	dependents := make([][]int, len(rb.Steps))
	for i, s := range rb.Steps {
		needs[i] = map[int]bool{}
		for _, n := range s.Needs {
			j, ok := index[n]
			if !ok || j == i || needs[i][j] {
				continue
			}
			needs[i][j] = true
			dependents[j] = append(dependents[j], i)
		}
	}
	waiting := make([]int, len(rb.Steps))
	var ready []int
	for i := range rb.Steps {
		waiting[i] = len(needs[i])
		if waiting[i] == 0 {
			ready = append(ready, i)
		}
	}
	var stages [][]string
	for len(ready) > 0 {
		stage := make([]string, len(ready))
		var next []int
		for k, i := range ready {
			stage[k] = rb.Steps[i].ID
			for _, j := range dependents[i] {
				if waiting[j]--; waiting[j] == 0 {
					next = append(next, j)
				}
			}
		}
		stages = append(stages, stage)
		slices.Sort(next)
		ready = next
	}
	return stages
}

// Ancestors returns the ids of every step that the step id waits for,
// directly or through other steps' needs. It does not include id itself,
// even when id is on a cycle, and it ignores needs that name no step.
func Ancestors(rb *Runbook, id string) map[string]bool {
	needsOf := map[string][]string{}
	for _, list := range [][]Step{rb.Preflight, rb.Steps} {
		for _, s := range list {
			if _, dup := needsOf[s.ID]; !dup {
				needsOf[s.ID] = s.Needs
			}
		}
	}
	seen := map[string]bool{}
	queue := append([]string(nil), needsOf[id]...)
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if _, exists := needsOf[n]; !exists || seen[n] || n == id {
			continue
		}
		seen[n] = true
		queue = append(queue, needsOf[n]...)
	}
	return seen
}
