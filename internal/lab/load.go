package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Ack is one write the app acknowledged: it was committed.
type Ack struct {
	ID     int64
	At     time.Time // when the answer arrived
	DBSite string    // the site whose database committed it
}

// Load writes through the app's front end (POST /write) from a few
// workers until Stop, recording every acknowledged write.
type Load struct {
	url    string
	client *http.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	acks   []Ack
	failed int
}

// StartLoad starts workers that each POST baseURL+"/write" every interval
// (back to back when 0).
func StartLoad(ctx context.Context, baseURL string, workers int, interval time.Duration) *Load {
	ctx, cancel := context.WithCancel(ctx)
	l := &Load{url: baseURL + "/write", cancel: cancel,
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			t := time.NewTicker(max(interval, time.Millisecond))
			defer t.Stop()
			for ctx.Err() == nil {
				l.writeOnce(ctx)
				select {
				case <-ctx.Done():
				case <-t.C:
				}
			}
		}()
	}
	return l
}

func (l *Load) writeOnce(ctx context.Context) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, nil)
	if err != nil {
		return
	}
	resp, err := l.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			l.fail()
		}
		return
	}
	defer resp.Body.Close()
	var ans WriteAnswer
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&ans) != nil || ans.ID == 0 {
		l.fail()
		return
	}
	l.mu.Lock()
	l.acks = append(l.acks, Ack{ID: ans.ID, At: time.Now(), DBSite: ans.DBSite})
	l.mu.Unlock()
}

func (l *Load) fail() {
	l.mu.Lock()
	l.failed++
	l.mu.Unlock()
}

// Stop ends the workers and returns what they saw.
func (l *Load) Stop() LoadStats {
	l.cancel()
	l.wg.Wait()
	l.client.CloseIdleConnections()
	return l.Stats()
}

// Stats is what the load has seen so far.
func (l *Load) Stats() LoadStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	acks := append([]Ack(nil), l.acks...)
	sort.Slice(acks, func(i, j int) bool { return acks[i].At.Before(acks[j].At) })
	return LoadStats{Acks: acks, Failed: l.failed}
}

// Acked is the number of acknowledged writes so far.
func (l *Load) Acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acks)
}

// LoadStats summarises a load run.
type LoadStats struct {
	Acks   []Ack // in order of acknowledgement
	Failed int   // requests not acknowledged (refused while the database moved)
}

// Before counts the writes acknowledged before t.
func (s LoadStats) Before(t time.Time) int {
	return sort.Search(len(s.Acks), func(i int) bool { return !s.Acks[i].At.Before(t) })
}

// BySite counts acknowledged writes by the site whose database took them.
func (s LoadStats) BySite() map[string]int {
	out := map[string]int{}
	for _, a := range s.Acks {
		out[a.DBSite]++
	}
	return out
}

// WriteGap is the longest time between two consecutive acknowledged writes:
// how long the app could not write while it failed over.
func (s LoadStats) WriteGap() time.Duration {
	var gap time.Duration
	for i := 1; i < len(s.Acks); i++ {
		gap = max(gap, s.Acks[i].At.Sub(s.Acks[i-1].At))
	}
	return gap
}

// IDs are the acknowledged rows' ids.
func (s LoadStats) IDs() []int64 {
	ids := make([]int64, len(s.Acks))
	for i, a := range s.Acks {
		ids[i] = a.ID
	}
	return ids
}

// Present counts how many of ids are rows of writes in the database dsn
// names (the app's database, as the admin).
func Present(ctx context.Context, dsn string, ids []int64) (int, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, fmt.Errorf("lab: count rows: %w", err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM writes WHERE id = ANY($1)`, ids).Scan(&n); err != nil {
		return 0, fmt.Errorf("lab: count rows: %w", err)
	}
	return n, nil
}
