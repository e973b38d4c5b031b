//go:build !linux

package testminio

import "syscall"

// sysProcAttr has no parent-death signal outside Linux; Main stops the
// server, and a killed test run may leave it running.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
