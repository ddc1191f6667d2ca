package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// clockTick is the unit of the CPU times in /proc/PID/stat: USER_HZ, which
// Linux fixes at 100 for user space on every architecture.
const clockTick = 10 * time.Millisecond

// procStat holds the fields of /proc/PID/stat the bench uses.
type procStat struct {
	ppid                         int
	utime, stime, cutime, cstime int64 // clock ticks
}

// parseProcStat parses a /proc/PID/stat line. The command name (field 2)
// is in parentheses and may itself contain spaces and parentheses, so the
// fields are counted from the last ')'.
func parseProcStat(b []byte) (procStat, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state): field n is f[n-3].
	if len(f) < 15 {
		return procStat{}, false
	}
	var st procStat
	vals := []*int64{&st.utime, &st.stime, &st.cutime, &st.cstime}
	for k, p := range vals {
		v, err := strconv.ParseInt(string(f[14-3+k]), 10, 64)
		if err != nil {
			return procStat{}, false
		}
		*p = v
	}
	ppid, err := strconv.Atoi(string(f[4-3]))
	if err != nil {
		return procStat{}, false
	}
	st.ppid = ppid
	return st, true
}

func readProcStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, false
	}
	return parseProcStat(b)
}

// processCPU returns the user and system CPU time of pid, and with
// children also that of its children it has waited for.
func processCPU(pid int, children bool) (time.Duration, bool) {
	st, ok := readProcStat(pid)
	if !ok {
		return 0, false
	}
	ticks := st.utime + st.stime
	if children {
		ticks += st.cutime + st.cstime
	}
	return time.Duration(ticks) * clockTick, true
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readProcStat(child); ok && st.ppid == pid {
			out = append(out, child)
		}
	}
	return out
}
