package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/drctl/drctl/internal/pglab"
)

const hbaBackupSuffix = ".drctl-unfenced" // where both fences keep the original

// fenceMarkers start the first line of a pg_hba.conf fenced by drctl or by
// switchover.sh.
var fenceMarkers = []string{"# drctl fence:", "# pgbench fence:"}

// unfence makes sure n's pg_hba.conf is not fenced and no fence backup is
// left, and reports whether it had to restore the file and whether it
// removed a backup. After a rejoin neither should be needed: pg_rewind has
// copied the new primary's (unfenced) pg_hba.conf over the old primary's and
// removed the backup, which only the old primary had.
func unfence(ctx context.Context, n *pglab.Node) (restored, leftover bool, err error) {
	path := filepath.Join(n.DataDir, "pg_hba.conf")
	backup := path + hbaBackupSuffix
	text, err := os.ReadFile(path)
	if err != nil {
		return false, false, err
	}
	if fenced(text) {
		orig, err := os.ReadFile(backup)
		if err != nil || fenced(orig) {
			return false, false, fmt.Errorf("%s: pg_hba.conf is fenced and %s is missing or fenced itself", n.Name, backup)
		}
		st, err := os.Stat(path)
		if err != nil {
			return false, false, err
		}
		tmp := path + ".pgbench"
		if err := os.WriteFile(tmp, orig, st.Mode().Perm()); err != nil {
			return false, false, err
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			if err := os.Chown(tmp, int(sys.Uid), int(sys.Gid)); err != nil {
				return false, false, err
			}
		}
		if err := os.Rename(tmp, path); err != nil {
			return false, false, err
		}
		if n.Running() {
			if err := n.Exec(ctx, `SELECT pg_reload_conf()`); err != nil {
				return false, false, err
			}
		}
		restored = true
	}
	switch err := os.Remove(backup); {
	case err == nil:
		leftover = true
	case !errors.Is(err, os.ErrNotExist):
		return restored, false, err
	}
	return restored, leftover, nil
}

func fenced(hba []byte) bool {
	for _, m := range fenceMarkers {
		if bytes.HasPrefix(hba, []byte(m)) {
			return true
		}
	}
	return false
}
