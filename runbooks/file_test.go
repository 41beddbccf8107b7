package runbooks_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/testwait"
	"github.com/drctl/drctl/runbooks"
)

// TestReadFileRefusesWhatIsNotARunbookFile: a device, a FIFO with no
// writer, a directory and an oversized file are refused at once with what
// they are; before, /dev/zero ate memory and a FIFO hung the CLI.
func TestReadFileRefusesWhatIsNotARunbookFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, runbooks.MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	small := filepath.Join(dir, "ok.yaml")
	if err := os.WriteFile(small, []byte("name: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{"/dev/zero", "/dev/zero is not a regular file (a character device)"},
		{fifo, "fifo.yaml is not a regular file (a FIFO)"},
		{dir, "is not a regular file (a directory)"},
		{big, "big.yaml is 1048577 bytes; a runbook may be at most 1048576 (1 MiB)"},
	} {
		done := make(chan error, 1)
		go func() { _, err := runbooks.ReadFile(tc.path); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReadFile(%s) = %v, want %q", tc.path, err, tc.want)
			}
		case <-time.After(testwait.Bound):
			t.Fatalf("ReadFile(%s) still blocked after %s", tc.path, testwait.Bound)
		}
	}
	if b, err := runbooks.ReadFile(small); err != nil || string(b) != "name: x\n" {
		t.Fatalf("ReadFile(ok.yaml) = %q, %v", b, err)
	}
}
