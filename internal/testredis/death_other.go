//go:build !linux

package testredis

import "os/exec"

// setDeathSignal does nothing where the kernel offers no parent-death
// signal; the test cleanup still kills the server.
func setDeathSignal(*exec.Cmd) {}
