package devserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/devserver"
)

// TestStartTunedAndStop proves the tuned dynamic configuration is accepted
// by the pinned server build and that Stop ends the process.
func TestStartTunedAndStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
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
