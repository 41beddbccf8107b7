package runbooks_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drctl/drctl/runbooks"
)

var update = flag.Bool("update", false, "rewrite testdata/broken/*.want from the current output")

// TestBrokenCorpus loads every runbook under testdata/broken and compares
// the problems reported, one String() per line, with NAME.want. Run
// `go test ./runbooks -run TestBrokenCorpus -update` after an intended
// change to messages, and review the diff.
func TestBrokenCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/broken/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no broken runbooks found: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			_, err := runbooks.Load(file, catalog)
			if err == nil {
				t.Fatalf("%s loaded clean; a broken runbook must report problems", file)
			}
			var problems runbooks.Problems
			if !errors.As(err, &problems) {
				t.Fatalf("Load returned %T (%v), want runbooks.Problems", err, err)
			}
			got := problems.Error() + "\n"
			wantFile := strings.TrimSuffix(file, ".yaml") + ".want"
			if *update {
				if err := os.WriteFile(wantFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("problems for %s differ from %s\n--- got\n%s--- want\n%s", file, wantFile, got, want)
			}
		})
	}
}

// FuzzParse checks that no input makes Parse or Validate panic (also on
// what Load validates of a runbook with shape problems), that a failed
// Parse always says why, and that a parsed runbook survives a JSON round
// trip unchanged (it is the workflow's input).
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/good/*.yaml", "testdata/broken/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checked := runbooks.Check("fuzz.yaml", data, catalog)
		rb, err := runbooks.Parse("fuzz.yaml", data)
		if err != nil {
			var problems runbooks.Problems
			if !errors.As(err, &problems) || len(problems) == 0 {
				t.Fatalf("Parse failed without problems: %v", err)
			}
			if len(checked) < len(problems) {
				t.Fatalf("Load-style checking found %d problems, fewer than Parse's %d", len(checked), len(problems))
			}
			return
		}
		runbooks.Validate(rb, catalog)
		runbooks.Stages(rb)
		first, err := json.Marshal(rb)
		if err != nil {
			t.Fatalf("marshal parsed runbook: %v", err)
		}
		var back runbooks.Runbook
		if err := json.Unmarshal(first, &back); err != nil {
			t.Fatalf("unmarshal %s: %v", first, err)
		}
		second, err := json.Marshal(&back)
		if err != nil {
			t.Fatalf("marshal round-tripped runbook: %v", err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("JSON round trip is not stable\nfirst:  %s\nsecond: %s", first, second)
		}
	})
}
