// Package exitcode holds the CLI's exit codes and the error type that selects them.
package exitcode

import "errors"

// Exit codes.
const (
	OK        = 0
	Error     = 1 // the command ran and failed (or a check failed)
	UsageCode = 2 // the command could not run: bad flags, arguments or input it cannot read
	Cluster   = 3 // the command could not run: the cluster is unreachable or refused the credentials (mesh check)
	Refused   = 4 // the command refused what the cluster holds (mesh uninstall: meshed workloads remain)
)

// UsageError marks an error in how the command was called.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usage wraps err as a usage error.
func Usage(err error) error { return &UsageError{Err: err} }

// For returns the exit code for an error returned by a command: UsageCode for a
// *UsageError, the code of an error with an ExitCode() int method (a failed check, a
// checks.ClusterError), else Error.
func For(err error) int {
	if err == nil {
		return OK
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		return UsageCode
	}
	var coded interface{ ExitCode() int }
	if errors.As(err, &coded) {
		return coded.ExitCode()
	}
	return Error
}

// Silent tells whether err has been reported already (as `mesh check` reports failed
// checks), so the CLI prints no "Error:" line for it.
func Silent(err error) bool {
	var s interface{ Silent() bool }
	return errors.As(err, &s) && s.Silent()
}
