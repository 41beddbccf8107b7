package runbooks_test

import (
	"reflect"
	"testing"

	"github.com/drctl/drctl/runbooks"
)

func TestStages(t *testing.T) {
	tests := []struct {
		name, steps string
		want        [][]string
	}{
		{"no steps", "steps: []", nil},
		{"independent steps share a stage in file order", `
steps:
  - {id: c}
  - {id: a}
  - {id: b}`, [][]string{{"c", "a", "b"}}},
		{"chain", `
steps:
  - {id: c, needs: [b]}
  - {id: b, needs: [a]}
  - {id: a}`, [][]string{{"a"}, {"b"}, {"c"}}},
		{"diamond waits for the longest path", `
steps:
  - {id: fence}
  - {id: approve, needs: [fence]}
  - {id: promote, needs: [approve]}
  - {id: announce, needs: [fence]}
  - {id: shift, needs: [promote, announce]}`, [][]string{{"fence"}, {"approve", "announce"}, {"promote"}, {"shift"}}},
		{"order within a stage follows the file, not discovery", `
steps:
  - {id: root}
  - {id: late, needs: [mid]}
  - {id: mid, needs: [root]}
  - {id: early, needs: [mid]}`, [][]string{{"root"}, {"mid"}, {"late", "early"}}},
		{"preflight ids and unknown needs are ignored", `
preflight:
  - {id: up}
steps:
  - {id: a, needs: [up, ghost, a]}
  - {id: b, needs: [a, a]}`, [][]string{{"a"}, {"b"}}},
		{"cycles and what follows them are left out", `
steps:
  - {id: a}
  - {id: x, needs: [y]}
  - {id: y, needs: [x]}
  - {id: z, needs: [y]}`, [][]string{{"a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rb := mustParse(t, tt.steps)
			if got := runbooks.Stages(rb); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Stages = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStagesOfGoodRunbook(t *testing.T) {
	rb, err := runbooks.Load("testdata/good/site-failover.yaml", catalog)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"fence"}, {"go-ahead"}, {"promote", "announce"}, {"shift"}, {"settle"}, {"verify"}}
	if got := runbooks.Stages(rb); !reflect.DeepEqual(got, want) {
		t.Errorf("Stages = %v, want %v", got, want)
	}
}
