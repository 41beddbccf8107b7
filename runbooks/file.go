package runbooks

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// MaxFileSize bounds a runbook (and a params file). A runbook travels as
// the run's workflow input, which Temporal caps at 2 MB of payload; the
// largest shipped runbook is under 10 KiB.
const MaxFileSize = 1 << 20

// ReadFile reads a file a person named on the command line: a regular file
// of at most MaxFileSize bytes. A device (/dev/zero), a FIFO or a directory
// is refused at once instead of read forever or waited on; so is a file
// that grows past the cap while it is read.
func ReadFile(path string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO must not wait for a writer; it is then
	// refused by the mode check below. Regular files ignore the flag.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	return readOpen(f, path)
}

// ReadFileIn is ReadFile of a path relative to dir that may not leave it:
// not absolute, no "..", no symbolic link pointing out (os.Root). A child
// runbook is read so, so a reviewed runbook cannot run text from outside
// the tree it was reviewed in.
func ReadFileIn(dir, rel string) ([]byte, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	return readOpen(f, rel)
}

func readOpen(f *os.File, path string) ([]byte, error) {
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s); give a YAML file", path, fileKind(fi.Mode()))
	}
	if fi.Size() > MaxFileSize {
		return nil, fmt.Errorf("%s is %d bytes; a runbook may be at most %d (1 MiB)", path, fi.Size(), MaxFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, errors.New(path + " grew past 1 MiB while it was read")
	}
	return data, nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return m.Type().String()
}
