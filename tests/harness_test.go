package tests

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/lab"
	"github.com/drctl/drctl/internal/testwait"

	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/worker"
)

// binDir holds the drctl and testworker binaries built once for the package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "drctl-tests-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	for _, pkg := range []string{"../cmd/drctl", "./testworker"} {
		out, err := exec.Command("go", "build", "-o", binDir+"/", pkg).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startServer starts a dev server for one test and stops it at cleanup.
func startServer(t *testing.T, opts devserver.Options) *devserver.Server {
	t.Helper()
	ctx := testwait.Context(t)
	srv, err := devserver.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Logf("stop dev server: %v", err)
		}
	})
	return srv
}

// testConfig is a worker/CLI configuration pointing at srv with a task
// queue of the test's own.
func testConfig(t *testing.T, srv *devserver.Server) config.Config {
	c := config.Defaults()
	c.Temporal.Address = srv.Address
	c.Temporal.TaskQueue = "q-" + strings.ToLower(strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()))
	c.Identity = "worker@test"
	c.Worker.Sites = lab.Sites // one machine standing for every site of the lab
	return c
}

// startWorker runs an in-process worker until the test ends.
func startWorker(t *testing.T, srv *devserver.Server, c config.Config) {
	t.Helper()
	reg, err := worker.Actions(c)
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(srv.Client(), c, reg)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
}

func operatorAs(srv *devserver.Server, c config.Config, who string) *operator.Operator {
	return &operator.Operator{Client: srv.Client(), TaskQueue: c.Temporal.TaskQueue, Identity: who, UpdateWait: 5 * time.Second}
}

// workerProcess is a testworker child process.
type workerProcess struct {
	cmd *exec.Cmd
	out *syncBuffer
}

func startWorkerProcess(t *testing.T, c config.Config, identity string, env ...string) *workerProcess {
	t.Helper()
	return startSiteWorkerProcess(t, c, identity, "", env...)
}

// startSiteWorkerProcess starts a testworker of site ("" for none).
func startSiteWorkerProcess(t *testing.T, c config.Config, identity, site string, env ...string) *workerProcess {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(filepath.Join(binDir, "testworker"), "-address", c.Temporal.Address, "-task-queue", c.Temporal.TaskQueue, "-identity", identity, "-site", site)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &workerProcess{cmd: cmd, out: out}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = p.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				_ = p.cmd.Process.Kill()
				<-done
			}
		}
	})
	testwait.For(t, "worker process ready", func() bool { return strings.Contains(out.String(), "ready") })
	return p
}

// kill9 kills the process with SIGKILL and reaps it.
func (p *workerProcess) kill9(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

// drctl runs the CLI binary against c and returns its combined output and
// exit code.
func drctl(t *testing.T, c config.Config, args ...string) (string, int) {
	t.Helper()
	var out syncBuffer
	code := drctlTo(t, c, &out, &out, args...)
	return out.String(), code
}

// drctlTo runs the built drctl with stdout and stderr kept apart.
func drctlTo(t *testing.T, c config.Config, stdout, stderr io.Writer, args ...string) int {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "drctl"), args...)
	cmd.Env = append(os.Environ(),
		"DRCTL_TEMPORAL_ADDRESS="+c.Temporal.Address,
		"DRCTL_TEMPORAL_TASK_QUEUE="+c.Temporal.TaskQueue,
	)
	cmd.Dir = t.TempDir()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("drctl %v: %v", args, err)
	}
	return code
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
