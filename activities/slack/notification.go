package slack

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Action IDs of the approval buttons, and the block that holds them. The
// interactivity endpoint (internal/slackapp) matches on these.
const (
	ActionApprove   = "drctl_approve"
	ActionReject    = "drctl_reject"
	ApprovalBlockID = "drctl_decide"
)

// MetadataEventType marks messages drctl posted; their metadata payload
// carries the notification's Key so a retried post finds the earlier one.
const MetadataEventType = "drctl"

// ButtonValue is what an approval button carries back to drctl: the run
// and the gate, nothing else (button values are visible to Slack clients).
type ButtonValue struct {
	Run   string `json:"run"`
	RunID string `json:"run_id,omitempty"`
	Step  string `json:"step"`
}

// Encode returns the button's value text.
func (v ButtonValue) Encode() string {
	b, _ := json.Marshal(v) // two strings: cannot fail
	return string(b)
}

// ParseButtonValue reads a value written by Encode.
func ParseButtonValue(s string) (ButtonValue, error) {
	var v ButtonValue
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return v, fmt.Errorf("button value is not drctl's: %w", err)
	}
	if v.Run == "" || v.Step == "" {
		return v, errors.New("button value names no run or no step")
	}
	return v, nil
}
