package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/objstore/objstore/storage"
)

// Error kinds. Node operations return errors that match exactly one of these
// with errors.Is; the api package alone turns a kind into an HTTP status.
// The rest of an error's text says what happened, for logs and clients.
var (
	// ErrInvalid: the request is malformed (bad ID, level, metadata, body).
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound: no such object, or its body is on no reachable store.
	ErrNotFound = errors.New("object not found")
	// ErrDeleted: the object has a tombstone.
	ErrDeleted = errors.New("object deleted")
	// ErrTooLarge: the body exceeds the configured maximum object size.
	ErrTooLarge = errors.New("object too large")
	// ErrConflict: the request contradicts the object's state, such as
	// lowering its consistency level or reusing a deleted ID.
	ErrConflict = errors.New("conflict")
	// ErrNoSpace: the local disk is full.
	ErrNoSpace = errors.New("insufficient storage")
	// ErrRemote: the remote tier answered with an error.
	ErrRemote = errors.New("remote store failed")
	// ErrRemoteUnavailable: the remote tier could not be reached or is
	// overloaded; the same request may succeed later.
	ErrRemoteUnavailable = errors.New("remote store unavailable")
	// ErrUnavailable: the object's body is only on nodes that are down.
	ErrUnavailable = errors.New("object unavailable")
	// ErrClosed: the node is shutting down.
	ErrClosed = errors.New("node closed")
	// ErrForbidden: the request names what this node does not serve, such
	// as a bucket not among its origin buckets.
	ErrForbidden = errors.New("forbidden")
	// ErrBusy: the node already runs as much of this kind of work as it
	// takes at once; the same request may succeed later.
	ErrBusy = errors.New("too busy")
	// ErrMisdirected: a peer routed a fill here that this node routes
	// elsewhere, as when nodes' views of the members differ for a moment.
	ErrMisdirected = errors.New("not the owner of this fill")
)

// remoteErr turns an error from the remote tier into the node's kinds:
// the backend has classified it (storage.ErrNotFound, which stays for the
// caller to interpret, storage.ErrUnavailable), so no backend's SDK errors
// are inspected here. A context that ended (the client left, or a time
// bound passed) is unavailability too.
func remoteErr(op string, err error) error {
	if err == nil || errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if isUnavailable(err) {
		return fmt.Errorf("%w: %s: %w", ErrRemoteUnavailable, op, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrRemote, op, err)
}

// isUnavailable reports whether err means the remote could not be reached
// or asked us to back off, as opposed to rejecting the request.
func isUnavailable(err error) bool {
	var netErr net.Error
	return errors.Is(err, storage.ErrUnavailable) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &netErr) && netErr.Timeout()
}

// diskErr classifies an error from the local disk or the journal.
func diskErr(err error) error {
	if errors.Is(err, storage.ErrNoSpace) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}
