package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// child is a process the harness started and must stop.
type child struct {
	name   string
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{}
	err    error // Wait's result, valid once exited is closed
}

// startChild starts cmd with stderr (and stdout, unless the caller took it)
// going to logPath, so a failing child can be diagnosed after the run.
func startChild(name string, cmd *exec.Cmd, logPath string) (*child, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	cmd.Stderr = f
	if cmd.Stdout == nil {
		cmd.Stdout = f
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: f, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// pid returns the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// running reports whether the child has not exited yet.
func (c *child) running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// stop asks the child to exit (SIGTERM), waits up to 15 s for it to finish
// (a sidecar flushes its audit writer), then kills it. It returns an error if
// the child had to be killed or exited with a failure after SIGTERM.
func (c *child) stop() error {
	defer c.log.Close()
	select {
	case <-c.exited:
		return fmt.Errorf("%s had already exited: %v", c.name, c.err)
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		var ee *exec.ExitError
		if c.err != nil && !(errors.As(c.err, &ee) && ee.ExitCode() == 0) {
			return fmt.Errorf("%s exited after SIGTERM: %v", c.name, c.err)
		}
		return nil
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("%s did not exit within 15s of SIGTERM and was killed", c.name)
	}
}
