package main

import (
	"os"
	"syscall"
)

// rusageMaxRSS is the peak RSS the kernel recorded for an exited process, in bytes.
func rusageMaxRSS(ps *os.ProcessState) (int64, bool) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, false
	}
	return ru.Maxrss << 10, true // kilobytes on Linux
}
