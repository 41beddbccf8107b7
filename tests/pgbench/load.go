package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drctl/drctl/internal/pglab"
)

// loader inserts rows as the app role on one connection until stopped or
// cut off, and remembers the IDs of the inserts that committed.
type loader struct {
	cancel context.CancelFunc
	done   chan struct{}
	ids    []int64
	cutOff bool // an insert failed before stop: the fence ended the session
}

func startLoad(ctx context.Context, n *pglab.Node, password string, every time.Duration) (*loader, error) {
	conn, err := pgx.Connect(ctx, n.DSN(pglab.AppUser, password, pglab.AppDB))
	if err != nil {
		return nil, fmt.Errorf("load: connect to %s as %s: %w", n.Name, pglab.AppUser, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	l := &loader{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		defer conn.Close(context.Background())
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			var id int64
			// An error ends the load: the fence terminated the session, and a
			// reconnect would be refused.
			if err := conn.QueryRow(ctx, `INSERT INTO load DEFAULT VALUES RETURNING id`).Scan(&id); err != nil {
				l.cutOff = ctx.Err() == nil
				return
			}
			l.ids = append(l.ids, id)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return l, nil
}

// stop ends the load and returns the IDs of the committed inserts.
func (l *loader) stop() []int64 {
	l.cancel()
	<-l.done
	return l.ids
}

// checkDurable fails unless every id is in the load table on n.
func checkDurable(ctx context.Context, n *pglab.Node, adminPassword string, ids []int64) error {
	conn, err := pgx.Connect(ctx, n.DSN(pglab.AdminUser, adminPassword, pglab.AppDB))
	if err != nil {
		return fmt.Errorf("durability check on %s: %w", n.Name, err)
	}
	defer conn.Close(context.Background())
	var found int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM load WHERE id = ANY($1)`, ids).Scan(&found); err != nil {
		return fmt.Errorf("durability check on %s: %w", n.Name, err)
	}
	if found != len(ids) {
		return fmt.Errorf("LOST WRITES: %d of %d inserts committed on the old primary are missing on %s", len(ids)-found, len(ids), n.Name)
	}
	return nil
}
