package testminio

import "syscall"

// sysProcAttr makes the kernel kill MinIO when the test process dies, so a
// crashed or killed test run leaves no server behind. (Pdeathsig fires when
// the spawning thread exits; the Go runtime only ends threads locked with
// runtime.LockOSThread, which the harness does not use.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
