package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// memStatus is the resident memory of a process as /proc/PID/status reports
// it, in KiB: VmRSS now and VmHWM, the peak since the process started, and
// the part of VmRSS that is anonymous memory (heap, stacks, SQLite's cache)
// rather than mapped files (mostly the binary's own code).
type memStatus struct {
	RSSKiB     int64
	HWMKiB     int64
	RSSAnonKiB int64
	RSSFileKiB int64
}

// readMem reads VmRSS and VmHWM of pid.
func readMem(pid int) (memStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memStatus{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	var m memStatus
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		var dst *int64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			dst = &m.RSSKiB
		case strings.HasPrefix(line, "VmHWM:"):
			dst = &m.HWMKiB
		case strings.HasPrefix(line, "RssAnon:"):
			dst = &m.RSSAnonKiB
		case strings.HasPrefix(line, "RssFile:"):
			dst = &m.RSSFileKiB
		default:
			continue
		}
		f := strings.Fields(line) // "VmRSS:", "12345", "kB"
		if len(f) < 2 {
			return memStatus{}, fmt.Errorf("pid %d: malformed status line %q", pid, line)
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return memStatus{}, fmt.Errorf("pid %d: malformed status line %q", pid, line)
		}
		*dst = v
	}
	if m.RSSKiB == 0 {
		return memStatus{}, fmt.Errorf("pid %d: no VmRSS in /proc status", pid)
	}
	return m, nil
}

// clockTick is USER_HZ, the unit of utime/stime in /proc/PID/stat. Linux
// fixes it at 100 for user space (it is part of the ABI regardless of the
// kernel's HZ), so reading it needs no cgo sysconf call.
const clockTick = 10 * time.Millisecond

// readCPU returns the CPU time (user + system, all threads) pid has used.
// Its resolution is one clock tick (10 ms), so callers sum it over long
// phases.
func readCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read cpu time of pid %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may contain spaces;
	// fields after the last ')' are fixed: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("pid %d: malformed /proc stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("pid %d: malformed /proc stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("pid %d: malformed /proc stat", pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// rssSampler records the highest VmRSS of a process while it runs: a peak
// under load that VmHWM alone would mix up with start-up.
type rssSampler struct {
	pid  int
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex
	maxKiB int64
	err    error
}

// startRSSSampler samples pid's VmRSS every interval until stop is called.
func startRSSSampler(pid int, interval time.Duration) *rssSampler {
	s := &rssSampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.stop:
				s.sample()
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) sample() {
	m, err := readMem(s.pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return
	}
	s.maxKiB = max(s.maxKiB, m.RSSKiB)
}

// Stop ends sampling and returns the highest VmRSS seen, in KiB.
func (s *rssSampler) Stop() (int64, error) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxKiB, s.err
}
