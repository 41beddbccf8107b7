package devserver_test

import (
	"testing"

	"github.com/drctl/drctl/internal/testwait"

	"github.com/drctl/drctl/internal/devserver"
)

// TestStartTunedAndStop proves the tuned dynamic configuration is accepted
// by the pinned server build and that Stop ends the process.
func TestStartTunedAndStop(t *testing.T) {
	ctx := testwait.Context(t)
	srv, err := devserver.Start(ctx, devserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client().CheckHealth(ctx, nil); err != nil {
		t.Fatalf("health: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
}
