package slackapp

import (
	"context"
	"sync"
	"testing"
	"time"

	drslack "github.com/drctl/drctl/activities/slack"
	"github.com/drctl/drctl/activities/slack/slacklab"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func slackCache(t *testing.T, ws *slacklab.Workspace, ttl time.Duration) (*groupCache, *clock) {
	api := drslack.NewClient(slacklab.Token, ws.APIURL(), 5*time.Second)
	c := newGroupCache(func(ctx context.Context, g string) ([]string, error) {
		return api.GetUserGroupMembersContext(ctx, g)
	}, ttl)
	clk := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	c.now = clk.now
	return c, clk
}

func member(t *testing.T, c *groupCache, group, user string) bool {
	t.Helper()
	ok, err := c.IsMember(context.Background(), group, user)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// A removed member passes until the entry's TTL runs out, never after.
func TestGroupCacheHonoursTheTTL(t *testing.T) {
	ws := slacklab.Start(t)
	ws.SetGroup("S1", "U1", "U2")
	c, clk := slackCache(t, ws, time.Minute)
	calls := func() int { return ws.Calls("usergroups.users.list") }

	if !member(t, c, "S1", "U1") || !member(t, c, "S1", "U2") || member(t, c, "S1", "U3") || calls() != 1 {
		t.Fatalf("first reads: %d calls, want 1", calls())
	}
	ws.SetGroup("S1", "U2") // U1 removed
	clk.add(59 * time.Second)
	if !member(t, c, "S1", "U1") || calls() != 1 {
		t.Fatalf("within the TTL the entry is used: %d calls", calls())
	}
	clk.add(time.Second)
	if member(t, c, "S1", "U1") || calls() != 2 {
		t.Fatalf("at the TTL the group is read again and U1 is out: %d calls", calls())
	}

	clk.add(time.Minute)
	ws.SetDown(true)
	if ok, err := c.IsMember(context.Background(), "S1", "U2"); err == nil || ok {
		t.Fatalf("Slack down with an expired entry: %v %v, want an error", ok, err)
	}
	ws.SetDown(false)
	if _, err := c.IsMember(context.Background(), "S9", "U2"); err == nil {
		t.Fatal("an unknown group must be an error")
	}
}

// The background refresh re-reads entries past half the TTL, so a click
// finds a fresh entry without asking Slack.
func TestGroupCacheRefreshesInTheBackground(t *testing.T) {
	ws := slacklab.Start(t)
	ws.SetGroup("S1", "U1")
	c, clk := slackCache(t, ws, time.Minute)
	calls := func() int { return ws.Calls("usergroups.users.list") }
	ctx := context.Background()

	c.refreshDue(ctx, []string{"S1"})
	c.refreshDue(ctx, []string{"S1"})
	if calls() != 1 {
		t.Fatalf("%d calls, want 1 (a fresh entry is not refreshed)", calls())
	}
	clk.add(30 * time.Second)
	ws.SetGroup("S1", "U2")
	c.refreshDue(ctx, []string{"S1"})
	if calls() != 2 {
		t.Fatalf("%d calls, want 2 (an entry past half its TTL is refreshed)", calls())
	}
	clk.add(45 * time.Second) // 75s after the first read, 45s after the refresh
	if member(t, c, "S1", "U1") || !member(t, c, "S1", "U2") || calls() != 2 {
		t.Fatalf("the click used the refreshed entry: %d calls", calls())
	}

	// The loop itself, on a real clock with a short TTL.
	live, _ := slackCache(t, ws, 200*time.Millisecond)
	live.now = time.Now
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { live.run(rctx, []string{"S1"}); close(done) }()
	before := calls()
	deadline := time.Now().Add(10 * time.Second)
	for calls() < before+3 {
		if time.Now().After(deadline) {
			t.Fatalf("the background refresh made %d calls in 10s", calls()-before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

// Concurrent reads of one group share one request.
func TestGroupCacheSharesOneRead(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	calls := 0
	c := newGroupCache(func(ctx context.Context, g string) ([]string, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		<-release
		return []string{"U1"}, nil
	}, time.Minute)
	var wg sync.WaitGroup
	results := make(chan bool, 10)
	for range 10 {
		wg.Go(func() {
			ok, err := c.IsMember(context.Background(), "S1", "U1")
			results <- ok && err == nil
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		e := c.entries["S1"]
		inflight := e != nil && e.loading != nil
		c.mu.Unlock()
		if inflight || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(results)
	for ok := range results {
		if !ok {
			t.Fatal("a reader got no answer")
		}
	}
	if calls != 1 {
		t.Fatalf("%d reads for 10 concurrent callers", calls)
	}
}
