package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// wipe removes a stopped node's journal and bodies, keeping its identity
// (node-id) and its cluster keyring, so that it rejoins its cluster as a
// new member would and takes everything from its peers: the way back for a
// node away for longer than the tombstone retention. It refuses while a
// node holds the journal.
func wipe(stateDir, filesDir string) error {
	journal := filepath.Join(stateDir, "journal.db")
	db, err := bolt.Open(journal, 0o600, &bolt.Options{Timeout: time.Second})
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return fmt.Errorf("%s is in use: stop the node first", journal)
	case err == nil:
		db.Close()
	case !errors.Is(err, fs.ErrNotExist):
		// A damaged journal is removed all the same: that is the point.
	}
	if err := os.Remove(journal); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	entries, err := os.ReadDir(filesDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	removed := 0
	for _, e := range entries {
		// Only what objstore made: shard folders (two characters) and the
		// temporary folder; anything else an operator put there stays.
		if !e.IsDir() || (len(e.Name()) != 2 && e.Name() != ".tmp") {
			continue
		}
		if err := os.RemoveAll(filepath.Join(filesDir, e.Name())); err != nil {
			return err
		}
		removed++
	}
	fmt.Printf("wiped %s and %d folders of bodies in %s; node-id and keyring kept: start the node to rejoin its cluster\n", journal, removed, filesDir)
	return nil
}
