package node

import (
	"context"
	"sync"

	"github.com/oklog/ulid/v2"
)

// keyLock serializes the writes of one object ID while letting writes of
// other IDs run in parallel; a PUT may hold its ID's lock for the length of
// a large upload.
type keyLock struct {
	mu   sync.Mutex // guards held
	held map[ulid.ULID]chan struct{}
}

// lock waits until id is free or ctx ends, and returns the unlock function.
func (k *keyLock) lock(ctx context.Context, id ulid.ULID) (func(), error) {
	for {
		k.mu.Lock()
		if k.held == nil {
			k.held = make(map[ulid.ULID]chan struct{})
		}
		wait, busy := k.held[id]
		if !busy {
			done := make(chan struct{})
			k.held[id] = done
			k.mu.Unlock()
			return func() {
				k.mu.Lock()
				delete(k.held, id)
				k.mu.Unlock()
				close(done)
			}, nil
		}
		k.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
