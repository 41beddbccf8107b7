package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Where a fleet's time went: the CPU time of the server's processes, of
// this process (the worker, and the bench's own client calls), of the rest
// of the machine, and the time the CPUs waited for I/O, all read from
// /proc before and after. /proc counts in clock ticks, which Linux shows
// user space at 100 per second (USER_HZ) on every architecture Go runs on.
const clockTick = 10 * time.Millisecond

// cpuSample is one reading.
type cpuSample struct {
	server, self time.Duration
	// busy is the whole machine's non-idle time (all CPUs), iowait its
	// idle time with I/O outstanding.
	busy, iowait time.Duration
	at           time.Time
}

// cpuUse is the difference of two readings.
type cpuUse struct {
	server, self, rest, iowait, wall time.Duration
}

// sampleCPU reads the server's CPU time, this process's and the machine's
// totals. The server is the process trees rooted at roots (the dev
// server; a cluster's services and postmasters): every process in them,
// and the children they have reaped, so a PostgreSQL backend that exits
// between two readings still counts. Every root must be running.
func sampleCPU(roots []int) (cpuSample, error) {
	s := cpuSample{self: cpuTime(), at: time.Now()}
	var err error
	if s.server, err = treesCPU(roots); err != nil {
		return s, err
	}
	s.busy, s.iowait, err = machineCPU()
	return s, err
}

func (b cpuSample) to(a cpuSample) cpuUse {
	u := cpuUse{server: a.server - b.server, self: a.self - b.self, iowait: a.iowait - b.iowait, wall: a.at.Sub(b.at)}
	// Tick rounding can make the rest a tick or two negative on an idle
	// machine.
	u.rest = max(0, (a.busy-b.busy)-u.server-u.self)
	return u
}

// cell is d in seconds and as a share of one core over the wall time.
func (u cpuUse) cell(d time.Duration) string {
	return fmt.Sprintf("%.1f (%.0f%%)", d.Seconds(), 100*d.Seconds()/u.wall.Seconds())
}

// procStat is what the bench reads from /proc/PID/stat.
type procStat struct {
	ppid int
	// cpu is the process's user+system time; reaped, that of the children
	// it has waited for (cutime+cstime).
	cpu, reaped time.Duration
}

// readProcStat reads /proc/PID/stat.
func readProcStat(pid int) (procStat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) may hold spaces; the fields after its
	// closing parenthesis start with field 3 (state).
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	var n [5]int64 // ppid (field 4); utime, stime, cutime, cstime (fields 14-17)
	for j, k := range [5]int{1, 11, 12, 13, 14} {
		if n[j], err = strconv.ParseInt(f[k], 10, 64); err != nil {
			return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	return procStat{
		ppid:   int(n[0]),
		cpu:    time.Duration(n[1]+n[2]) * clockTick,
		reaped: time.Duration(n[3]+n[4]) * clockTick,
	}, nil
}

// treesCPU is the CPU time of the process trees rooted at roots: each
// process's own and its reaped children's. A root that cannot be read is
// an error; a descendant that exits while /proc is read is left out (its
// parent counts it once it has reaped it).
func treesCPU(roots []int) (time.Duration, error) {
	stats := map[int]procStat{}
	children := map[int][]int{}
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, err
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if st, err := readProcStat(pid); err == nil {
			stats[pid] = st
			children[st.ppid] = append(children[st.ppid], pid)
		}
	}
	var total time.Duration
	seen := map[int]bool{}
	for _, root := range roots {
		if _, ok := stats[root]; !ok {
			// Read it alone for the error (or a process started after the
			// listing).
			st, err := readProcStat(root)
			if err != nil {
				return 0, fmt.Errorf("server process %d: %w", root, err)
			}
			stats[root] = st
		}
		for todo := []int{root}; len(todo) > 0; {
			pid := todo[len(todo)-1]
			todo = todo[:len(todo)-1]
			if seen[pid] {
				continue
			}
			seen[pid] = true
			total += stats[pid].cpu + stats[pid].reaped
			todo = append(todo, children[pid]...)
		}
	}
	return total, nil
}

// machineCPU is the machine's non-idle and iowait time from /proc/stat's
// cpu line (user nice system idle iowait irq softirq steal ...).
func machineCPU() (busy, iowait time.Duration, err error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, errors.New("/proc/stat: no cpu line")
	}
	var v [8]int64
	for i := range v {
		if v[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
	}
	busy = time.Duration(v[0]+v[1]+v[2]+v[5]+v[6]+v[7]) * clockTick
	return busy, time.Duration(v[4]) * clockTick, nil
}

// serverPID finds the dev server's process: a child of this process
// listening on port, which the Temporal CLI is told with --port (the
// SDK's dev-server launcher, which devserver uses, does not expose the
// process).
func serverPID(port string) (int, error) {
	me := os.Getpid()
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, err
	}
	want := []byte("\x00--port\x00" + port + "\x00")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || parentOf(pid) != me {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err == nil && bytes.Contains(append(cmd, 0), want) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no child process of %d was started with --port %s", me, port)
}

// parentOf is a process's parent PID (0 when it cannot be read).
func parentOf(pid int) int {
	st, err := readProcStat(pid)
	if err != nil {
		return 0
	}
	return st.ppid
}
