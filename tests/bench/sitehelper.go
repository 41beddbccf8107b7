//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/sitewatch"
	"github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

// siteHelperArg, as the first argument, makes this binary one of the
// programs the sites bench runs inside a site's namespace (so the cut kills
// it as it kills the site's database): the site's HTTP health endpoint, or
// the watcher standing in the site. It is not a flag of the bench.
const siteHelperArg = "site-helper"

// siteWatch is what a watcher needs to know of the site it watches; the
// bench and the helper build one configuration from it (watchConfig).
type siteWatch struct {
	address, taskQueue string
	site               string
	probes             []string
	runbook            string // the on_loss runbook file
	interval           time.Duration
	lostAfter          time.Duration
}

// watchConfig is the configuration every watcher of one site shares: probe
// every interval (each probe bounded by 3/4 of it), re-send an unchanged
// view every 5 intervals (a view counts for 3 times that), quorum 2 of the
// three places.
func watchConfig(w siteWatch) config.Config {
	c := config.Defaults()
	c.Temporal.Address = w.address
	c.Temporal.TaskQueue = w.taskQueue
	c.Watch = config.Watch{
		Interval: w.interval, Timeout: w.interval * 3 / 4, ReportEvery: 5 * w.interval,
		Quorum: sitesQuorum, LostAfter: w.lostAfter, Places: places,
	}
	s := config.Site{Probes: w.probes}
	if w.runbook != "" {
		s.OnLoss = config.OnLoss{Runbook: w.runbook, Reason: w.site + " lost (bench)"}
	}
	c.Sites = map[string]config.Site{w.site: s}
	return c
}

// partitionDial fails every dial while cut is set, as a watcher whose own
// network is down sees it (the kernel's ENETUNREACH); otherwise it dials
// normally. The watcher still reaches Temporal: the worst case, since its
// down votes arrive.
type partitionDial struct {
	cut atomic.Bool
}

func (d *partitionDial) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.cut.Load() {
		return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}
	}
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

// siteHelper runs a helper until it is killed (SIGKILL, by the cut) or
// SIGTERM; it returns the exit code.
func siteHelper(args []string) int {
	fs := flag.NewFlagSet(siteHelperArg, flag.ContinueOnError)
	var (
		role   = fs.String("role", "", "health (an HTTP health endpoint on -listen) or watcher")
		listen = fs.String("listen", "", "health: host:port to serve GET /health on")
		probes = fs.String("probes", "", "watcher: the site's probe URLs, comma-separated")
		from   = fs.String("from", "", "watcher: the place it stands in")
		w      siteWatch
	)
	fs.StringVar(&w.address, "address", "", "watcher: Temporal frontend host:port")
	fs.StringVar(&w.taskQueue, "task-queue", "", "watcher: the site watches' task queue")
	fs.StringVar(&w.site, "site", "", "watcher: the site")
	fs.StringVar(&w.runbook, "runbook", "", "watcher: the on_loss runbook file")
	fs.DurationVar(&w.interval, "interval", 0, "watcher: watch.interval")
	fs.DurationVar(&w.lostAfter, "lost-after", 0, "watcher: watch.lost_after")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var err error
	switch *role {
	case "health":
		err = serveHealth(ctx, *listen)
	case "watcher":
		w.probes = strings.Split(*probes, ",")
		err = runWatcher(ctx, w, *from)
	default:
		err = fmt.Errorf("-role %q: use health or watcher", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "site-helper:", err)
		return 1
	}
	return 0
}

// serveHealth answers GET /health with 200 on addr until ctx ends.
func serveHealth(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/health" {
				http.NotFound(w, r)
				return
			}
			fmt.Fprintln(w, "ok")
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// runWatcher runs the watcher standing in from until ctx ends; SIGUSR1
// cuts its own network (partitionDial), SIGUSR2 heals it.
func runWatcher(ctx context.Context, w siteWatch, from string) error {
	c, err := client.DialContext(ctx, client.Options{HostPort: w.address, Identity: "watcher-" + from, Logger: worker.QuietLogger()})
	if err != nil {
		return fmt.Errorf("reach Temporal at %s: %w", w.address, err)
	}
	defer c.Close()
	pd := &partitionDial{}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sig)
	go func() {
		for s := range sig {
			pd.cut.Store(s == syscall.SIGUSR1)
			fmt.Fprintf(os.Stderr, "%s own network cut: %t\n", time.Now().Format(time.StampMilli), s == syscall.SIGUSR1)
		}
	}()
	wt, err := sitewatch.New(watchConfig(w), c, sitewatch.Options{
		Identity: "watcher-" + from, From: from, Dial: pd.dial, Catalog: worker.Catalog(),
		OnChange: func(v workflows.SiteView) {
			fmt.Fprintf(os.Stderr, "%s %s down=%t\n", v.At.Format(time.StampMilli), v.Site, v.Down)
		},
		Logf: func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) },
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "watching %s from %s\n", w.site, from)
	return wt.Run(ctx)
}
