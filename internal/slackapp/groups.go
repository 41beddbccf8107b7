package slackapp

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// listMembers reads a Slack user group's members (usergroups.users.list).
type listMembers func(ctx context.Context, group string) ([]string, error)

// groupCache holds user group memberships for at most ttl. An entry's age
// counts from the moment its request was sent, so a member removed at time
// R is absent from every entry fetched after R, and an entry fetched before
// R is trusted only until fetched+ttl < R+ttl: a removed user passes for a
// member for at most ttl after the removal. A failed read never falls back
// to an expired entry.
type groupCache struct {
	list listMembers
	ttl  time.Duration
	now  func() time.Time

	mu      sync.Mutex
	entries map[string]*groupEntry
	calls   int // reads sent to Slack
}

type groupEntry struct {
	members map[string]bool
	fetched time.Time
	// loading is the read in flight, shared by concurrent callers.
	loading *flight
}

type flight struct {
	done    chan struct{} // closed when the read ends
	members map[string]bool
	err     error
}

func newGroupCache(list listMembers, ttl time.Duration) *groupCache {
	return &groupCache{list: list, ttl: ttl, now: time.Now, entries: map[string]*groupEntry{}}
}

// IsMember reports whether user is in group, reading the group from Slack
// when no entry younger than the TTL exists.
func (c *groupCache) IsMember(ctx context.Context, group, user string) (bool, error) {
	c.mu.Lock()
	if e := c.entries[group]; e != nil && e.members != nil && c.now().Sub(e.fetched) < c.ttl {
		ok := e.members[user]
		c.mu.Unlock()
		return ok, nil
	}
	c.mu.Unlock()
	members, err := c.refresh(ctx, group)
	if err != nil {
		return false, err
	}
	return members[user], nil
}

// refresh reads group from Slack, replaces its entry and returns the
// members read. A refresh already in flight is joined, not repeated.
func (c *groupCache) refresh(ctx context.Context, group string) (map[string]bool, error) {
	c.mu.Lock()
	e := c.entries[group]
	if e == nil {
		e = &groupEntry{}
		c.entries[group] = e
	}
	if f := e.loading; f != nil {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.members, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{})}
	e.loading = f
	c.calls++
	sent := c.now()
	c.mu.Unlock()

	users, err := c.list(ctx, group)

	c.mu.Lock()
	defer c.mu.Unlock()
	e.loading = nil
	if err != nil {
		f.err = fmt.Errorf("read Slack user group %s: %w", group, err)
	} else {
		f.members = make(map[string]bool, len(users))
		for _, u := range users {
			f.members[u] = true
		}
		e.members, e.fetched = f.members, sent
	}
	close(f.done)
	return f.members, f.err
}

// refreshDue re-reads every group in groups whose entry is missing or past
// half its TTL, so clicks rarely wait for Slack.
func (c *groupCache) refreshDue(ctx context.Context, groups []string) {
	for _, g := range groups {
		c.mu.Lock()
		e := c.entries[g]
		due := e == nil || e.members == nil || c.now().Sub(e.fetched) >= c.ttl/2
		c.mu.Unlock()
		if due {
			_, _ = c.refresh(ctx, g) // a failure leaves the entry to expire; IsMember reads again
		}
	}
}

// run refreshes groups in the background every quarter TTL until ctx ends.
func (c *groupCache) run(ctx context.Context, groups []string) {
	if len(groups) == 0 {
		return
	}
	c.refreshDue(ctx, groups)
	t := time.NewTicker(c.ttl / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.refreshDue(ctx, groups)
		}
	}
}
