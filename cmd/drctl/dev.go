package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/operator"
	drworker "github.com/drctl/drctl/worker"
)

func (a *app) devCmd() *cobra.Command {
	var (
		stateDir string
		port     int
		uiPort   int
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local Temporal dev server (project-local bin/temporal) and a worker until Ctrl-C",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.config()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(stateDir, 0o755); err != nil {
				return err
			}
			hostPort := ""
			if port != 0 {
				hostPort = fmt.Sprintf("127.0.0.1:%d", port)
			}
			ui := ""
			if uiPort != 0 {
				ui = fmt.Sprint(uiPort)
			}
			log, err := os.OpenFile(filepath.Join(stateDir, "temporal.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return err
			}
			defer log.Close()
			srv, err := devserver.Start(cmd.Context(), devserver.Options{
				DBFile: filepath.Join(stateDir, "temporal.db"), HostPort: hostPort, UI: true, UIPort: ui, Log: log,
			})
			if err != nil {
				return fmt.Errorf("%w (is the port taken? try --port 0 for any free one)", err)
			}
			defer srv.Stop()
			c.Temporal.Address = srv.Address
			if err := a.runWorkerIn(cmd.Context(), c, func() {
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "Temporal dev server on %s (state in %s), web UI %s\n", srv.Address, stateDir, uiURL(srv.Address, uiPort))
				fmt.Fprintf(out, "a worker is polling task queue %q. In another terminal:\n", c.Temporal.TaskQueue)
				fmt.Fprintf(out, "  export DRCTL_TEMPORAL_ADDRESS=%s\n  drctl run runbooks/demo.yaml --set service_url=http://HOST/healthz\n", srv.Address)
				fmt.Fprintln(out, "Ctrl-C stops the worker and the server; runs resume when you start it again.")
			}); err != nil {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", ".drctl/dev", "where the dev server keeps its database and log")
	cmd.Flags().IntVar(&port, "port", 7233, "frontend port on 127.0.0.1 (0: any free port)")
	cmd.Flags().IntVar(&uiPort, "ui-port", 8233, "web UI port (0: any free port)")
	return cmd
}

// uiFor is the web UI address the dev server uses when no UI port is given:
// the frontend port plus 1000.
func uiFor(frontend string) string {
	host, port, err := net.SplitHostPort(frontend)
	if err != nil {
		return "(unknown)"
	}
	var p int
	fmt.Sscan(port, &p)
	return fmt.Sprintf("http://%s:%d", host, p+1000)
}

func uiURL(frontend string, uiPort int) string {
	if uiPort == 0 {
		return "(on a free port; see .drctl/dev/temporal.log)"
	}
	host, _, _ := net.SplitHostPort(frontend)
	return fmt.Sprintf("http://%s:%d", host, uiPort)
}

// runWorkerIn runs an in-process worker against c until ctx ends; ready is
// called once it polls.
func (a *app) runWorkerIn(ctx context.Context, c config.Config, ready func()) error {
	reg, err := a.registry()
	if err != nil {
		return err
	}
	cl, err := drworker.Dial(ctx, c, drworker.DialOptions{})
	if err != nil {
		return err
	}
	defer cl.Close()
	w := drworker.New(cl, c, reg)
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()
	ready()
	<-ctx.Done()
	return nil
}

func (a *app) demoCmd() *cobra.Command {
	var (
		file string
		keep bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a demo runbook end to end on a throwaway local dev server and worker",
		Long: "demo starts a Temporal dev server (bin/temporal, free ports, state in memory), a worker\n" +
			"and a small local HTTP service, runs runbooks/demo.yaml against it with live progress,\n" +
			"approves its gate as a second person (the two-person rule refuses the starter), prints\n" +
			"the report, and stops everything it started.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			c, err := a.config()
			if err != nil {
				return err
			}
			rb, err := a.load(file)
			if err != nil {
				return err
			}
			svc, err := startDemoService()
			if err != nil {
				return err
			}
			defer svc.Close()

			srv, err := devserver.Start(ctx, devserver.Options{UI: true})
			if err != nil {
				return err
			}
			defer srv.Stop()
			c.Temporal.Address = srv.Address
			c.Temporal.TaskQueue = "drctl-demo"
			ui := uiFor(srv.Address)
			fmt.Fprintf(out, "Temporal dev server on %s (web UI %s); demo service on %s\n", srv.Address, ui, svc.url)

			reg, err := a.registry()
			if err != nil {
				return err
			}
			w := drworker.New(srv.Client(), c, reg)
			if err := w.Start(); err != nil {
				return err
			}
			defer w.Stop()

			// The demo plays two people, so the two-person rule can be seen.
			op := &operator.Operator{Client: srv.Client(), TaskQueue: c.Temporal.TaskQueue, Identity: "demo-operator"}
			approver := &operator.Operator{Client: srv.Client(), TaskQueue: c.Temporal.TaskQueue, Identity: "demo-approver"}
			started, err := op.Start(ctx, rb, map[string]string{"service_url": svc.url + "/healthz"}, "failover", "drctl demo")
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "started %s (runbook %s) as %s\n", started.WorkflowID, rb.Name, op.Identity)
			go autoApprove(ctx, op, approver, started.WorkflowID, out)
			err = a.follow(ctx, op, started.WorkflowID)
			fmt.Fprintf(out, "\nthe run in the Temporal UI: %s/namespaces/default/workflows/%s\n", ui, started.WorkflowID)
			if keep && ctx.Err() == nil {
				fmt.Fprintln(out, "--keep: the dev server and worker stay up until Ctrl-C")
				<-ctx.Done()
			}
			return err
		},
	}
	cmd.Flags().StringVar(&file, "runbook", "runbooks/demo.yaml", "runbook to run (it gets --set service_url=the demo service)")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the dev server, its UI and the worker running after the run, until Ctrl-C")
	return cmd
}

// autoApprove answers every gate the run waits at: first as the person who
// started the run, which the two-person rule refuses, then as a second
// person, which is accepted.
func autoApprove(ctx context.Context, starter, second *operator.Operator, id string, out io.Writer) {
	done := map[string]bool{}
	for ctx.Err() == nil {
		st, err := second.Status(ctx, id)
		if err != nil || st.Closed {
			return
		}
		for _, step := range st.Waiting {
			if done[step] {
				continue
			}
			done[step] = true
			if _, err := starter.Decide(ctx, id, step, true, ""); err != nil {
				fmt.Fprintf(out, "  demo: approving %s as %s is refused: %v\n", step, starter.Identity, err)
			}
			if _, err := second.Decide(ctx, id, step, true, "demo: a second person approves"); err != nil {
				fmt.Fprintf(out, "  demo: approving %s as %s failed: %v\n", step, second.Identity, err)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

type demoService struct {
	url string
	srv *http.Server
}

// startDemoService serves /healthz on a free loopback port: the "service"
// the demo runbook checks.
func startDemoService() (*demoService, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	s := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "demo service:", err)
		}
	}()
	return &demoService{url: "http://" + ln.Addr().String(), srv: s}, nil
}

func (d *demoService) Close() { _ = d.srv.Close() }
