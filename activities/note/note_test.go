package note_test

import (
	"context"
	"strings"
	"testing"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/activities/note"
)

func request(with map[string]any) activities.Request {
	return activities.Request{Step: "announce", Action: note.Name, With: with}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		message any
		want    string
	}{
		{"text", "failover started by alice", "failover started by alice"},
		{"number becomes text", float64(42), "42"},
		{"empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := note.Note{}.Apply(context.Background(), request(map[string]any{"message": tc.message}))
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if !res.Changed {
				t.Error("Changed = false; a note is recorded every time it is applied")
			}
			if res.Summary != tc.want || res.Outputs["message"] != tc.want {
				t.Errorf("summary %q, outputs %v; want message %q in both", res.Summary, res.Outputs, tc.want)
			}
		})
	}
}

func TestObserveChangesNothing(t *testing.T) {
	obs, err := note.Note{}.Observe(context.Background(), request(map[string]any{"message": "ticket opened"}))
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	if obs.Current != "would record: ticket opened" {
		t.Errorf("Current = %q, want it to say what Apply would record", obs.Current)
	}
	if len(obs.Changes) != 0 {
		t.Errorf("Changes = %v, want none", obs.Changes)
	}
}

func TestBadInputIsPermanent(t *testing.T) {
	tests := []struct {
		name string
		with map[string]any
		say  string
	}{
		{"unknown input", map[string]any{"message": "x", "channel": "#sre"}, `unknown input "channel"`},
		{"message not text", map[string]any{"message": []any{"a"}}, `input "message"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, applyErr := note.Note{}.Apply(context.Background(), request(tc.with))
			_, observeErr := note.Note{}.Observe(context.Background(), request(tc.with))
			for what, err := range map[string]error{"Apply": applyErr, "Observe": observeErr} {
				if err == nil || !activities.IsPermanent(err) || !strings.Contains(err.Error(), tc.say) {
					t.Errorf("%s error = %v, want a permanent error containing %q", what, err, tc.say)
				}
			}
		})
	}
}

func TestSpec(t *testing.T) {
	spec := note.Note{}.Spec()
	in, ok := spec.Input("message")
	if spec.Name != note.Name || !ok || !in.Required {
		t.Errorf("spec %+v: want %q with a required message input", spec, note.Name)
	}
}
