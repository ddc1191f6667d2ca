package testredis

import (
	"os/exec"
	"syscall"
)

// setDeathSignal asks Linux to kill the server if the test binary dies
// without running its cleanups (a panic, a timeout, SIGKILL).
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
