package runbooks_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/runbooks"
)

func TestBigTmp(t *testing.T) {
	var b strings.Builder
	b.WriteString(header + "steps:\n")
	for i := 0; i < 1000; i++ {
		needs := ""
		if i > 0 {
			var ns []string
			for j := max(0, i-20); j < i; j++ {
				ns = append(ns, fmt.Sprintf("s%d", j))
			}
			needs = "needs: [" + strings.Join(ns, ", ") + "], "
		}
		fmt.Fprintf(&b, "  - {id: s%d, %saction: http.check, with: {url: \"${{ steps.s0.outputs.status }}\"}}\n", i, needs)
	}
	start := time.Now()
	rb := mustParse(t, b.String())
	ps := runbooks.Validate(rb, catalog)
	st := runbooks.Stages(rb)
	t.Log(time.Since(start), len(ps), len(st))
}
