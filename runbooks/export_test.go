package runbooks

// StripPositions clears what a JSON round trip does not keep (Line fields
// and the position index), so tests can compare a parsed runbook with its
// round-tripped copy.
func StripPositions(rb *Runbook) {
	rb.pos = nil
	rb.broken = nil
	for _, list := range [][]Step{rb.Preflight, rb.Steps} {
		for i := range list {
			list[i].Line = 0
			if list[i].Compensate != nil {
				list[i].Compensate.Line = 0
			}
		}
	}
	for i := range rb.Params {
		rb.Params[i].Line = 0
	}
	for i := range rb.Targets {
		rb.Targets[i].Line = 0
	}
}

// ParserKeys lists the keys Parse accepts in each part of a runbook, keyed
// by the schema $defs (or "" for the top level) that must describe them.
var ParserKeys = map[string][]string{
	"":             runbookKeys,
	"param":        paramKeys,
	"target":       targetKeys,
	"step":         stepKeys,
	"retry":        retryKeys,
	"compensation": compensateKeys,
	"approval":     approvalKeys,
}

// Check parses and validates data as Load does with a file's contents.
func Check(file string, data []byte, cat Catalog) Problems {
	_, probs := check(file, data, cat)
	probs.Sort()
	return probs
}

// Secret rules, for table tests.
var (
	LooksSecret  = looksSecret
	SecretInText = secretInText
)
