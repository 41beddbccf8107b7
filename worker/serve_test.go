package worker_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/activities/note"
	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/testwait"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/worker"
)

// TestSecretsComeBeforeTheEnvironment: secrets handed to the worker win
// over its environment; a variable they lack, and a file, are read as
// before; a credential found nowhere is a permanent error.
func TestSecretsComeBeforeTheEnvironment(t *testing.T) {
	t.Setenv("DRCTL_TEST_WORKER_HANDED", "from-env")
	t.Setenv("DRCTL_TEST_WORKER_ENV_ONLY", "env-only")
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := worker.Secrets{"DRCTL_TEST_WORKER_HANDED": " handed ", "DRCTL_TEST_WORKER_BLANK": " "}
	target := func(ref *runbooks.CredentialRef) runbooks.Target {
		return runbooks.Target{Name: "db", Credentials: ref}
	}
	for _, tc := range []struct {
		ref  *runbooks.CredentialRef
		want string
	}{
		{&runbooks.CredentialRef{Env: "DRCTL_TEST_WORKER_HANDED"}, "handed"},
		{&runbooks.CredentialRef{Env: "DRCTL_TEST_WORKER_ENV_ONLY"}, "env-only"},
		{&runbooks.CredentialRef{File: file}, "from-file"},
	} {
		dsn, err := s.DSN(target(tc.ref))
		if err != nil || dsn != tc.want {
			t.Errorf("DSN(%+v) = %q, %v; want %q", tc.ref, dsn, err, tc.want)
		}
		key, err := s.Secret(target(tc.ref))
		if err != nil || key != tc.want {
			t.Errorf("Secret(%+v) = %q, %v; want %q", tc.ref, key, err, tc.want)
		}
	}
	for _, name := range []string{"DRCTL_TEST_WORKER_ABSENT", "DRCTL_TEST_WORKER_BLANK"} {
		_, err := s.DSN(target(&runbooks.CredentialRef{Env: name}))
		if err == nil || !activities.IsPermanent(err) || !strings.Contains(err.Error(), name+" is not set") {
			t.Errorf("%s: %v; want a permanent error saying it is not set", name, err)
		}
	}
}

// TestServeRefusesAnActionTakenTwice: a bad registry stops Serve (and
// Start) before it dials anything.
func TestServeRefusesAnActionTakenTwice(t *testing.T) {
	cfg := config.Defaults()
	cfg.Temporal.Address = "127.0.0.1:1" // never dialled
	o := worker.Options{Actions: []activities.Action{note.Note{}}}
	if err := worker.Serve(context.Background(), cfg, o); err == nil || !strings.Contains(err.Error(), "note") {
		t.Errorf("Serve: %v; want an error naming the action taken twice", err)
	}
	if r, err := worker.Start(context.Background(), cfg, o); err == nil || r != nil {
		t.Errorf("Start: %v, %v; want the same error and no worker", r, err)
	}
}

// TestStartServesAndStops runs a worker on a dev server the way the demo
// and the benchmarks do: it is ready with the shipped and the extra
// actions, with the providers adjusted, and Stop ends it (and what runs
// beside it) without an error. Serve dials on its own when given no client.
func TestStartServesAndStops(t *testing.T) {
	ctx := testwait.Context(t)
	srv, err := devserver.Start(ctx, devserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	cfg := config.Defaults()
	cfg.Temporal.Address = srv.Address
	cfg.Temporal.TaskQueue = "worker-test"

	var configured, besideEnded atomic.Bool
	r, err := worker.Start(ctx, cfg, worker.Options{
		Actions:   []activities.Action{extra{}},
		Configure: func(p *worker.Providers) { configured.Store(p.Postgres != nil && p.DNS != nil) },
		Beside: func(ctx context.Context, s worker.Serving) {
			<-ctx.Done()
			besideEnded.Store(true)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !configured.Load() {
		t.Error("Configure was not called with the configured providers")
	}
	for _, name := range []string{"test.extra", "postgres.promote", "http.check"} {
		if _, ok := r.Registry.Lookup(name); !ok {
			t.Errorf("the ready worker does not serve %s", name)
		}
	}
	if _, err := r.Client.CheckHealth(ctx, nil); err != nil {
		t.Errorf("the worker's own connection: %v", err)
	}
	if err := r.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if !besideEnded.Load() {
		t.Error("Serve returned before what ran beside the worker ended")
	}
}

// extra is an action a test registers beside the shipped ones.
type extra struct{ note.Note }

func (extra) Spec() runbooks.ActionSpec {
	s := note.Note{}.Spec()
	s.Name = "test.extra"
	return s
}
