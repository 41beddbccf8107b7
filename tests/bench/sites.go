//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/netlab"
	"github.com/drctl/drctl/internal/pglab"
	"github.com/drctl/drctl/internal/proclog"
	"github.com/drctl/drctl/internal/sitewatch"
	"github.com/drctl/drctl/internal/testwait"
	"github.com/drctl/drctl/tests/internal/benchkit"
	"github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

// The sites tables: how long a site's power loss takes to become a
// proposed failover run, and how many proposals a watcher's own network
// trouble causes (the goal is none). Everything is real but the power: a
// network namespace per site (internal/netlab) with a PostgreSQL 15 and an
// HTTP health endpoint listening inside it, three watchers in three places
// (east's inside the site as a process of its own, west's and the
// witness's in this process, outside the site), the site watch workflow on
// an in-process worker, a tuned dev server.
//
// A cut is netlab's Cut: the site's subnet becomes unreachable, its links
// go down and every process inside is SIGKILLed, east's watcher included.
// Each cut gets a fresh namespace and a site and lock of its own, so every
// incident starts from a fresh site watch; the cut comes at a random point
// of the watchers' round (0..interval after all three votes were seen up
// and fresh). A partition fails exactly one watcher's dials (ENETUNREACH)
// while it still reaches Temporal, so its down votes arrive; the places
// take turns, each partition held for lost_after + 5 intervals after the
// watch heard the down vote, then healed, and the next starts once all
// three votes are up again.

// sitesQuorum: two of the three places must agree.
const sitesQuorum = 2

// places are where the watchers stand; east is the watched site.
var places = []string{"east", "west", "witness"}

// healthPort is the health endpoint's port on the site's address.
const healthPort = "8080"

// pollEvery is how often the run's existence is polled after a cut.
const pollEvery = 10 * time.Millisecond

// sitesOptions are the sites bench's flags.
type sitesOptions struct {
	cuts, partitions    int
	interval, lostAfter time.Duration
}

// check checks the watch settings the flags make, as a watcher would.
func (o sitesOptions) check() error {
	c := watchConfig(siteWatch{address: "127.0.0.1:7233", taskQueue: "q", site: "east", probes: []string{"tcp://10.0.0.1:1"}, interval: o.interval, lostAfter: o.lostAfter})
	c.Watch.From = "west"
	if err := errors.Join(c.Validate(), c.CheckWatch()); err != nil {
		return fmt.Errorf("-sites-interval %s, -sites-lost-after %s: %w", o.interval, o.lostAfter, err)
	}
	return nil
}

// sitesBench is what every site of the bench shares.
type sitesBench struct {
	o       sitesOptions
	env     *benchkit.Env
	c       client.Client
	exe     string      // this binary, for the helpers
	dir     string      // on_loss runbooks
	pg      *pglab.Node // its data directory serves every site in turn; nil: none
	pgCred  *syscall.Credential
	probeOf string // what the probes are, for the headers
	log     io.Writer
}

// benchSites prints the detection and partition tables. It needs root
// (network namespaces); without it, it says so and fails.
func benchSites(ctx context.Context, out, stderr io.Writer, bin string, o sitesOptions) (err error) {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the sites figures need root: each site is a network namespace (internal/netlab: CAP_NET_ADMIN, CAP_SYS_ADMIN, iproute2); run as root, e.g. sudo -E make bench-sites")
	}
	// A first namespace now, before anything slow, says whether they work.
	probe, err := netlab.NewSite(ctx, netlab.Options{Name: "probe"})
	if err != nil {
		return fmt.Errorf("the sites figures need network namespaces: %w", err)
	}
	if err := probe.Close(); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	b := &sitesBench{o: o, exe: exe, log: stderr, probeOf: "tcp + http"}
	if b.dir, err = os.MkdirTemp("", "drctl-bench-sites-"); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(b.dir)) }()

	pair, err := pglab.NewPair(ctx, pglab.Options{})
	switch {
	case errors.Is(err, pglab.ErrNotInstalled):
		fmt.Fprintf(stderr, "bench: PostgreSQL 15 is not installed (%v); the site is probed by TCP and HTTP only\n", err)
	case err != nil:
		return fmt.Errorf("sites: %w", err)
	default:
		defer func() { err = errors.Join(err, pair.Close()) }()
		// Only the primary's data directory is used, by a server this
		// bench starts inside each site in turn.
		if err := errors.Join(pair.Standby.Stop(ctx), pair.Primary.Stop(ctx)); err != nil {
			return fmt.Errorf("sites: %w", err)
		}
		if b.pgCred, err = pglab.Credential("postgres"); err != nil {
			return fmt.Errorf("sites: %w", err)
		}
		b.pg, b.probeOf = pair.Primary, "postgres + tcp + http"
	}

	b.env, err = benchkit.Start(ctx, benchkit.Options{
		Server: devserver.Options{Binary: bin}, TaskQueue: "drctl-bench-sites", Identity: "bench-worker",
	})
	if err != nil {
		return fmt.Errorf("sites: %w", err)
	}
	defer func() { err = errors.Join(err, b.env.Close()) }()
	b.c = b.env.Server.Client()

	if o.cuts > 0 {
		if err := b.cuts(ctx, out); err != nil {
			return err
		}
	}
	if o.partitions > 0 {
		return b.soak(ctx, out)
	}
	return nil
}

// settings names the watch settings, for the tables' headers.
func (b *sitesBench) settings() string {
	c := watchConfig(siteWatch{interval: b.o.interval, lostAfter: b.o.lostAfter}).Watch
	return fmt.Sprintf("interval %s, probe timeout %s, report_every %s (stale after %s), quorum %d of 3 places, lost_after %s; probes %s",
		c.Interval, c.Timeout, c.ReportEvery, 3*c.ReportEvery, c.Quorum, c.LostAfter, b.probeOf)
}

// cutSample is one power cut, each time from the cut.
type cutSample struct {
	down       map[string]time.Duration // place: the first Down view of its watcher (its own clock)
	firstHeard time.Duration            // the watch took the first down vote
	quorum     time.Duration            // the watch took the quorum's down vote (losing since)
	declared   time.Duration            // Detection.At (the incident's declared_at)
	started    time.Duration            // the proposed run's start time (server)
	seen       time.Duration            // this bench saw the run exist (wall, polled)
	cutTook    time.Duration            // netlab's Cut itself
}

// cuts runs o.cuts power cuts and prints the detection table.
func (b *sitesBench) cuts(ctx context.Context, out io.Writer) error {
	var samples []cutSample
	for i := range b.o.cuts {
		s, err := b.oneCut(ctx, i+1)
		if err != nil {
			return fmt.Errorf("cut %d: %w", i+1, err)
		}
		fmt.Fprintf(b.log, "cut %d/%d: down west %s, witness %s; heard %s, quorum %s, declared %s, run started %s, seen %s (ms from the cut; the cut took %s)\n",
			i+1, b.o.cuts, benchkit.MS(s.down["west"]), benchkit.MS(s.down["witness"]), benchkit.MS(s.firstHeard), benchkit.MS(s.quorum),
			benchkit.MS(s.declared), benchkit.MS(s.started), benchkit.MS(s.seen), s.cutTook.Round(time.Millisecond))
		samples = append(samples, s)
	}
	fmt.Fprintf(out, "\n# site-loss detection: power cut (netlab Cut: route unreachable, links down, SIGKILL inside) -> proposed failover run\n# %s\n", b.settings())
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "from the cut to\tn\tp50 ms\tmax ms\t")
	row := func(what string, f func(cutSample) time.Duration) {
		d := benchkit.Sorted(samples, f)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t\n", what, len(d), benchkit.MS(benchkit.Percentile(d, 50)), benchkit.MS(d[len(d)-1]))
	}
	row("west's first Down view", func(s cutSample) time.Duration { return s.down["west"] })
	row("witness's first Down view", func(s cutSample) time.Duration { return s.down["witness"] })
	row("first down vote taken by the watch", func(s cutSample) time.Duration { return s.firstHeard })
	row("quorum of down votes (losing since)", func(s cutSample) time.Duration { return s.quorum })
	row("loss declared (Detection.At)", func(s cutSample) time.Duration { return s.declared })
	row("proposed run started (server)", func(s cutSample) time.Duration { return s.started })
	row(fmt.Sprintf("proposed run seen (polled every %s)", pollEvery), func(s cutSample) time.Duration { return s.seen })
	fmt.Fprintln(tw, "of which\t\t\t\t")
	row("  quorum held for lost_after (declared - quorum)", func(s cutSample) time.Duration { return s.declared - s.quorum })
	row("  proposal (run started - declared)", func(s cutSample) time.Duration { return s.started - s.declared })
	tw.Flush()
	fmt.Fprintln(out, "# east's watcher dies with its site; its last (up) view stays fresh until it goes stale, so west and the witness make the quorum")
	return nil
}

// oneCut brings a fresh site up, cuts it and measures until the proposed
// run exists; it leaves nothing behind.
func (b *sitesBench) oneCut(ctx context.Context, n int) (s cutSample, err error) {
	site, err := b.startSite(ctx, fmt.Sprintf("east-cut%02d", n))
	if err != nil {
		return s, err
	}
	defer func() { err = errors.Join(err, site.close(ctx)) }()
	if _, err := site.waitAllUp(ctx); err != nil {
		return s, err
	}
	// A random point of the watchers' round.
	select {
	case <-time.After(rand.N(b.o.interval)):
	case <-ctx.Done():
		return s, ctx.Err()
	}
	cutAt := time.Now()
	if err := site.net.Cut(ctx); err != nil {
		return s, err
	}
	s.cutTook = time.Since(cutAt)

	runID := workflows.WorkflowID(site.lock)
	var started time.Time
	var last string
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for i := 0; ; i++ {
		d, err := b.c.DescribeWorkflow(ctx, runID, "")
		if err == nil {
			s.seen = time.Since(cutAt)
			started = d.RawResponse.GetWorkflowExecutionInfo().GetStartTime().AsTime()
			break
		}
		var nf *serviceerror.NotFound
		if !errors.As(err, &nf) {
			last = err.Error()
		}
		if i%50 == 0 { // every half second: has the watch given up on proposing?
			if st, err := site.state(ctx); err == nil {
				last = describe(st)
				if len(st.Recent) > 0 && st.Recent[0].NotProposed != "" {
					return s, fmt.Errorf("the loss was declared but nothing proposed: %s", st.Recent[0].NotProposed)
				}
			}
		}
		if time.Since(cutAt) > testwait.Bound {
			return s, fmt.Errorf("no proposed run %s %s after the cut; last seen: %s%s", runID, testwait.Bound, last, site.logs())
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-tick.C:
		}
	}
	s.started = started.Sub(cutAt)

	st, err := site.waitFor(ctx, "the incident with its run", func(st workflows.SiteWatchState) bool {
		return len(st.Recent) > 0 && st.Recent[0].RunID != ""
	})
	if err != nil {
		return s, err
	}
	inc := st.Recent[0]
	if st.Incidents != 1 || inc.WorkflowID != runID {
		return s, fmt.Errorf("incidents %d, proposed %s; want 1 incident proposing %s", st.Incidents, inc.WorkflowID, runID)
	}
	s.declared = inc.DeclaredAt.Sub(cutAt)
	s.down = map[string]time.Duration{}
	for _, v := range inc.Evidence {
		if v.Down {
			s.down[v.From] = v.Since.Sub(cutAt)
		}
	}
	if len(s.down) < sitesQuorum || s.down["west"] <= 0 || s.down["witness"] <= 0 {
		return s, fmt.Errorf("evidence %+v: want west and the witness down after the cut", inc.Evidence)
	}
	heard, losing, err := b.timeline(ctx, site.name, cutAt)
	if err != nil {
		return s, err
	}
	s.firstHeard, s.quorum = heard.Sub(cutAt), losing.Sub(cutAt)
	return s, nil
}

// timeline reads the site watch's memo history (upserted at every change of
// what it shows) for when, after since, it took the first down vote and
// when the quorum began.
func (b *sitesBench) timeline(ctx context.Context, site string, since time.Time) (heard, losing time.Time, err error) {
	it := b.c.GetWorkflowHistory(ctx, workflows.SiteWatchID(site), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() && losing.IsZero() {
		e, err := it.Next()
		if err != nil {
			return heard, losing, fmt.Errorf("history of %s: %w", workflows.SiteWatchID(site), err)
		}
		f := e.GetWorkflowPropertiesModifiedEventAttributes().GetUpsertedMemo().GetFields()[workflows.MemoKey]
		if f == nil {
			continue
		}
		var st workflows.SiteWatchState
		if err := converter.GetDefaultDataConverter().FromPayload(f, &st); err != nil {
			return heard, losing, fmt.Errorf("memo of %s: %w", workflows.SiteWatchID(site), err)
		}
		for _, v := range st.Votes {
			if heard.IsZero() && v.Fresh && v.View.Down && v.Heard.After(since) {
				heard = v.Heard
			}
		}
		if st.LosingSince != nil && st.LosingSince.After(since) {
			losing = *st.LosingSince
		}
	}
	if heard.IsZero() || losing.IsZero() {
		return heard, losing, fmt.Errorf("the memos of %s show no down vote or no quorum after the cut", workflows.SiteWatchID(site))
	}
	return heard, losing, nil
}

// soakResult is what the partition table shows.
type soakResult struct {
	byPlace            map[string]int
	partitioned, wall  time.Duration
	incidents, runs    int
	losing, othersDown int // partitions during which the watch was losing; in which another place was not up
	signals, watchRuns int
	taken              []time.Duration // partition -> the watch took the down vote
}

// soak partitions one watcher at a time, o.partitions times, on one site
// that stays up, and prints the partition table.
func (b *sitesBench) soak(ctx context.Context, out io.Writer) (err error) {
	site, err := b.startSite(ctx, "east-soak")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, site.close(ctx)) }()
	hold := b.o.lostAfter + 5*b.o.interval
	r := soakResult{byPlace: map[string]int{}}
	start := time.Now()
	for i := range b.o.partitions {
		if _, err := site.waitAllUp(ctx); err != nil {
			return fmt.Errorf("before partition %d: %w", i+1, err)
		}
		place := places[i%len(places)]
		t0 := time.Now()
		if err := site.partition(place, true); err != nil {
			return err
		}
		if _, err := site.waitFor(ctx, place+"'s down vote", func(st workflows.SiteWatchState) bool {
			v, ok := vote(st, place)
			return ok && v.Fresh && v.View.Down
		}); err != nil {
			return fmt.Errorf("partition %d: %w", i+1, err)
		}
		r.taken = append(r.taken, time.Since(t0))
		heldFrom := time.Now()
		var losing, othersDown bool
		for time.Since(heldFrom) < hold {
			st, err := site.state(ctx)
			if err != nil {
				return fmt.Errorf("partition %d: %w", i+1, err)
			}
			losing = losing || st.LosingSince != nil || st.State != workflows.SiteUp || st.Incidents > 0
			for _, p := range places {
				if v, ok := vote(st, p); p != place && (!ok || !v.Fresh || v.View.Down) {
					othersDown = true
				}
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		if err := site.partition(place, false); err != nil {
			return err
		}
		if _, err := site.waitAllUp(ctx); err != nil {
			return fmt.Errorf("after partition %d: %w", i+1, err)
		}
		r.partitioned += time.Since(t0)
		r.byPlace[place]++
		if losing {
			r.losing++
		}
		if othersDown {
			r.othersDown++
		}
		if (i+1)%10 == 0 {
			fmt.Fprintf(b.log, "partition %d/%d done (%s)\n", i+1, b.o.partitions, time.Since(start).Round(time.Second))
		}
	}
	r.wall = time.Since(start)
	st, err := site.state(ctx)
	if err != nil {
		return err
	}
	r.incidents, r.signals = st.Incidents, st.Signals
	if r.runs, err = b.executions(ctx, workflows.WorkflowID(site.lock)); err != nil {
		return err
	}
	if r.watchRuns, err = b.executions(ctx, workflows.SiteWatchID(site.name)); err != nil {
		return err
	}

	fmt.Fprintf(out, "\n# single-watcher partitions: one watcher at a time cannot reach the site (its dials fail, ENETUNREACH; it still reaches Temporal), held for lost_after + 5 intervals (%s) after the watch took its down vote, then healed\n# %s\n", hold, b.settings())
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	slices.Sort(r.taken)
	fmt.Fprintln(tw, "partitions\teast\twest\twitness\tpartitioned\tsoak wall\tdown vote taken p50/max ms\tlosing seen\tother place not up\tincidents\tproposed runs\twatch runs\t")
	fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\t%s\t%s / %s\t%d\t%d\t%d\t%d\t%d\t\n", b.o.partitions, r.byPlace["east"], r.byPlace["west"], r.byPlace["witness"],
		r.partitioned.Round(time.Second), r.wall.Round(time.Second), benchkit.MS(benchkit.Percentile(r.taken, 50)), benchkit.MS(r.taken[len(r.taken)-1]),
		r.losing, r.othersDown, r.incidents, r.runs, r.watchRuns)
	tw.Flush()
	fmt.Fprintf(out, "# down vote taken: from the partition to the watch holding the watcher's down vote; losing seen: partitions during which a query (every 100ms) showed a quorum of down votes, a state other than up, or an incident (goal 0); watch runs: the site watch and its continue-as-new runs (%d signals taken by the last)\n", r.signals)
	if r.incidents > 0 || r.runs > 0 || r.losing > 0 {
		return fmt.Errorf("single-watcher partitions caused %d incidents, %d proposed runs, %d losing episodes; want none", r.incidents, r.runs, r.losing)
	}
	return nil
}

// executions counts the executions of a workflow ID (visibility).
func (b *sitesBench) executions(ctx context.Context, id string) (int, error) {
	resp, err := b.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = '%s'", id)})
	if err != nil {
		return 0, fmt.Errorf("list executions of %s: %w", id, err)
	}
	return len(resp.GetExecutions()), nil
}

// liveSite is a site namespace with its database, health endpoint and
// watcher running inside, and the watchers of west and the witness.
type liveSite struct {
	b     *sitesBench
	name  string // the site, as the watch knows it
	lock  string // its on_loss runbook's lock
	net   *netlab.Site
	procs []*siteProc
	// watcher is east's watcher, inside the site.
	watcher *siteProc
	// outside are the partitionable dials of west's and the witness's
	// watchers; stop stops them.
	outside map[string]*partitionDial
	stop    func()
}

// startSite creates a namespace and starts the site in it, then the three
// watchers. On failure nothing is left running.
func (b *sitesBench) startSite(ctx context.Context, name string) (s *liveSite, err error) {
	ns, err := netlab.NewSite(ctx, netlab.Options{Name: "east"})
	if err != nil {
		return nil, err
	}
	s = &liveSite{b: b, name: name, lock: name + "-loss", net: ns, outside: map[string]*partitionDial{}, stop: func() {}}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.close(ctx))
		}
	}()
	addr := ns.SiteAddr.String()
	var probes []string
	if b.pg != nil {
		if err := s.startPostgres(ctx); err != nil {
			return s, err
		}
		pg := net.JoinHostPort(addr, strconv.Itoa(b.pg.Port))
		probes = append(probes, "postgres://"+pg, "tcp://"+pg)
	}
	health := net.JoinHostPort(addr, healthPort)
	if _, err := s.start("health", exec.Command(b.exe, siteHelperArg, "-role", "health", "-listen", health), syscall.SIGKILL); err != nil {
		return s, err
	}
	probes = append(probes, "http://"+health+"/health")
	if b.pg == nil {
		probes = append(probes, "tcp://"+health)
	}
	if err := waitProbes(ctx, probes); err != nil {
		return s, fmt.Errorf("%s: %w%s", name, err, s.logs())
	}

	runbook := filepath.Join(b.dir, name+".yaml")
	if err := os.WriteFile(runbook, []byte(fmt.Sprintf(onLossRunbook, name, s.lock)), 0o644); err != nil {
		return s, err
	}
	exposed, err := ns.Expose(b.env.Server.Address)
	if err != nil {
		return s, err
	}
	w := siteWatch{
		address: b.env.Server.Address, taskQueue: b.env.Config.Temporal.TaskQueue, site: name, probes: probes,
		runbook: runbook, interval: b.o.interval, lostAfter: b.o.lostAfter,
	}
	if s.watcher, err = s.start("watcher-east", exec.Command(b.exe, siteHelperArg, "-role", "watcher", "-from", "east",
		"-address", exposed, "-task-queue", w.taskQueue, "-site", name, "-probes", strings.Join(probes, ","),
		"-runbook", runbook, "-interval", w.interval.String(), "-lost-after", w.lostAfter.String()), syscall.SIGKILL); err != nil {
		return s, err
	}
	wctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	s.stop = func() { cancel(); wg.Wait() }
	for _, from := range places[1:] {
		pd := &partitionDial{}
		wt, err := sitewatch.New(watchConfig(w), b.c, sitewatch.Options{
			Identity: "watcher-" + from, From: from, Dial: pd.dial, Catalog: worker.Catalog(),
			Logf: func(format string, args ...any) { fmt.Fprintf(b.log, "watcher-"+from+": "+format+"\n", args...) },
		})
		if err != nil {
			return s, err
		}
		s.outside[from] = pd
		// Watchers in different places keep rounds of their own: each
		// starts at a random point of the interval.
		wg.Go(func() {
			select {
			case <-time.After(rand.N(b.o.interval)):
				_ = wt.Run(wctx)
			case <-wctx.Done():
			}
		})
	}
	return s, nil
}

// onLossRunbook is the runbook a site's loss proposes: a note, then a gate
// nobody answers here. Its name and lock are the site's.
const onLossRunbook = `apiVersion: drctl/v1
name: %s-failover
lock: %s
steps:
  - id: announce
    action: note
    with: {message: "site lost (bench)"}
  - id: go-ahead
    needs: [announce]
    approval:
      approvers: [oncall]
`

// startPostgres starts the bench's PostgreSQL inside the site, listening
// on the site's address, and waits until it accepts connections (after a
// cut, once crash recovery is done).
func (s *liveSite) startPostgres(ctx context.Context) error {
	n := s.b.pg
	cmd := exec.Command(filepath.Join(pglab.DefaultBinDir, "postgres"),
		"-D", n.DataDir,
		"-c", "listen_addresses="+s.net.SiteAddr.String(),
		"-c", "port="+strconv.Itoa(n.Port),
		"-c", "unix_socket_directories="+n.Dir,
		"-c", "cluster_name="+n.Name)
	cmd.Dir = n.Dir
	cmd.Env = []string{"HOME=" + n.Dir, "LC_ALL=C", "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.b.pgCred}
	// SIGQUIT (immediate shutdown) if the bench dies first.
	p, err := s.start("postgres", cmd, syscall.SIGQUIT)
	if err != nil {
		return err
	}
	pidFile := filepath.Join(n.DataDir, "postmaster.pid")
	return poll(ctx, "PostgreSQL to accept connections in "+s.net.Namespace, 5*time.Millisecond, func() (bool, string) {
		if !p.running() {
			return false, "postgres exited: " + p.out.LastLines(10)
		}
		b, err := os.ReadFile(pidFile)
		lines := strings.Split(string(b), "\n")
		return err == nil && len(lines) >= 8 && lines[0] == strconv.Itoa(p.cmd.Process.Pid) && strings.TrimSpace(lines[7]) == "ready", string(b)
	})
}

// siteProc is a process of the bench running inside a site.
type siteProc struct {
	name   string
	cmd    *exec.Cmd
	out    *proclog.Tail
	exited chan struct{}
}

func (p *siteProc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// start starts cmd inside the site and reaps it; deathSig reaches it if
// the bench dies first.
func (s *liveSite) start(name string, cmd *exec.Cmd, deathSig syscall.Signal) (*siteProc, error) {
	p := &siteProc{name: name, cmd: cmd, out: &proclog.Tail{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = deathSig
	if err := s.net.Start(cmd); err != nil {
		return nil, err
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	s.procs = append(s.procs, p)
	return p, nil
}

// partition cuts (on) or heals the network of the watcher in place.
func (s *liveSite) partition(place string, on bool) error {
	if place != "east" {
		s.outside[place].cut.Store(on)
		return nil
	}
	sig := syscall.SIGUSR2
	if on {
		sig = syscall.SIGUSR1
	}
	if err := s.watcher.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("partition east's watcher (pid %d): %w%s", s.watcher.cmd.Process.Pid, err, s.logs())
	}
	return nil
}

// close stops the watchers, kills what still runs inside (by PID), removes
// the namespace and ends the site's watch and proposed run.
func (s *liveSite) close(ctx context.Context) error {
	s.stop()
	for _, p := range s.procs {
		if p.running() {
			_ = p.cmd.Process.Kill()
		}
		<-p.exited
	}
	err := s.net.Close()
	for _, id := range []string{workflows.SiteWatchID(s.name), workflows.WorkflowID(s.lock)} {
		terr := s.b.c.TerminateWorkflow(ctx, id, "", "bench done")
		var nf *serviceerror.NotFound
		if terr != nil && !errors.As(terr, &nf) {
			err = errors.Join(err, fmt.Errorf("terminate %s: %w", id, terr))
		}
	}
	return err
}

// logs is the last lines of the site's processes, for errors.
func (s *liveSite) logs() string {
	var b strings.Builder
	for _, p := range s.procs {
		if tail := p.out.LastLines(8); tail != "" {
			fmt.Fprintf(&b, "\n--- %s (pid %d):\n%s", p.name, p.cmd.Process.Pid, tail)
		}
	}
	return b.String()
}

// state queries the site's watch.
func (s *liveSite) state(ctx context.Context) (workflows.SiteWatchState, error) {
	var st workflows.SiteWatchState
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := s.b.c.QueryWorkflow(qctx, workflows.SiteWatchID(s.name), "", workflows.QuerySiteWatch)
	if err == nil {
		err = v.Get(&st)
	}
	return st, err
}

// waitFor polls the watch every 20 ms until cond holds.
func (s *liveSite) waitFor(ctx context.Context, what string, cond func(workflows.SiteWatchState) bool) (workflows.SiteWatchState, error) {
	var st workflows.SiteWatchState
	err := poll(ctx, what+" ("+s.name+")", 20*time.Millisecond, func() (bool, string) {
		var err error
		if st, err = s.state(ctx); err != nil {
			return false, err.Error()
		}
		return cond(st), describe(st)
	})
	if err != nil {
		err = fmt.Errorf("%w%s", err, s.logs())
	}
	return st, err
}

// waitAllUp waits until the watch is up with the three places' votes fresh
// and up.
func (s *liveSite) waitAllUp(ctx context.Context) (workflows.SiteWatchState, error) {
	return s.waitFor(ctx, "all three places to vote up", func(st workflows.SiteWatchState) bool {
		if st.State != workflows.SiteUp && st.State != workflows.SiteBack {
			return false
		}
		for _, p := range places {
			if v, ok := vote(st, p); !ok || !v.Fresh || v.View.Down {
				return false
			}
		}
		return true
	})
}

// vote is place's vote in st.
func vote(st workflows.SiteWatchState, place string) (workflows.Vote, bool) {
	for _, v := range st.Votes {
		if v.View.From == place {
			return v, true
		}
	}
	return workflows.Vote{}, false
}

// describe is a watch's state in one line, for errors.
func describe(st workflows.SiteWatchState) string {
	var votes []string
	for _, v := range st.Votes {
		votes = append(votes, fmt.Sprintf("%s down=%t fresh=%t", v.View.From, v.View.Down, v.Fresh))
	}
	return fmt.Sprintf("state %q, losing since %v, incidents %d, votes [%s]", st.State, st.LosingSince, st.Incidents, strings.Join(votes, "; "))
}

// poll calls cond every `every` until it holds; after testwait.Bound it
// fails with what was waited for and what cond last said.
func poll(ctx context.Context, what string, every time.Duration, cond func() (bool, string)) error {
	start := time.Now()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		ok, seen := cond()
		if ok {
			return nil
		}
		if time.Since(start) > testwait.Bound {
			return fmt.Errorf("waited %s for %s; last seen: %s", time.Since(start).Round(time.Millisecond), what, seen)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last seen: %s)", what, ctx.Err(), seen)
		case <-tick.C:
		}
	}
}

// waitProbes waits until every probe answers from here (the root
// namespace).
func waitProbes(ctx context.Context, probes []string) error {
	dial := (&net.Dialer{}).DialContext
	return poll(ctx, "the site's probes to answer", 20*time.Millisecond, func() (bool, string) {
		for _, p := range probes {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			err := sitewatch.Probe(pctx, dial, p)
			cancel()
			if err != nil {
				return false, err.Error()
			}
		}
		return true, ""
	})
}
