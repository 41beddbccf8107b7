package runbooks

import (
	"fmt"
	"strings"
)

// Closest is closest for other packages' names (configuration keys).
func Closest(name string, candidates []string) (string, bool) { return closest(name, candidates) }

// closest returns the candidate nearest to name by edit distance, ignoring
// case, when it is near enough to be a plausible typo: at most a third of
// the name's length (and at least 1, at most 3) edits away. Ties go to the
// earlier candidate so hints are deterministic.
func closest(name string, candidates []string) (string, bool) {
	limit := min(max(len(name)/3, 1), 3)
	best, bestDist := "", limit+1
	lower := strings.ToLower(name)
	for _, c := range candidates {
		if c == name {
			continue
		}
		if d := editDistance(lower, strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best, best != ""
}

// editDistance is the Levenshtein distance between a and b, by bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// suggest is the hint for an unknown name: the closest candidate if there
// is a plausible one, otherwise the list of what is known (what names the
// kind of thing: "keys", "actions", "inputs").
func suggest(name string, candidates []string, what string) string {
	if c, ok := closest(name, candidates); ok {
		return fmt.Sprintf("did you mean %q?", c)
	}
	if len(candidates) == 0 {
		return fmt.Sprintf("there are no %s here", what)
	}
	return fmt.Sprintf("known %s: %s", what, strings.Join(candidates, ", "))
}
