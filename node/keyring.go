package node

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"

	"github.com/objstore/objstore/cluster"
)

// This file rotates the cluster secret without downtime, as Consul rotates
// its gossip key: install a new secret on every node, make it primary on
// every node, then remove the old one. Each step is carried to every live
// peer over the (authenticated) private API; a new secret travels wrapped
// under the current primary key, never in the clear.

// Keyring operations.
const (
	KeyringInstall = "install"
	KeyringUse     = "use"
	KeyringRemove  = "remove"
)

// KeyringOp is one keyring change as a peer carries it out: Op, and for
// install the secret wrapped by the sender's keyring (cluster.Keyring.Wrap),
// for use and remove the key's fingerprint.
type KeyringOp struct {
	Op  string `json:"op"`
	Key string `json:"key,omitempty"`
	ID  string `json:"id,omitempty"`
}

// KeyringRequest is a client's keyring change: Op; Secret (base64, at
// least cluster.MinSecretBytes bytes) for install; ID (a fingerprint from
// the key list) for use and remove.
type KeyringRequest struct {
	Op     string `json:"op"`
	Secret string `json:"secret,omitempty"`
	ID     string `json:"id,omitempty"`
}

// KeyringResult reports a keyring change across the cluster: the key it
// concerned, and each node's outcome.
type KeyringResult struct {
	ID    string              `json:"id"`
	Nodes []KeyringNodeResult `json:"nodes"`
	// Keys is this node's keyring after the change.
	Keys []cluster.KeyInfo `json:"keys"`
}

// KeyringNodeResult is one node's outcome of a keyring change.
type KeyringNodeResult struct {
	Node  string `json:"node"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// errNoKeyring is returned when the node has no cluster secret.
var errNoKeyring = fmt.Errorf("%w: this node has no cluster secret (--cluster-secret-file) to rotate", ErrConflict)

func (n *Node) keyring() *cluster.Keyring {
	if n.cfg.Auth == nil {
		return nil
	}
	return n.cfg.Auth.Keyring
}

// Keys lists this node's cluster keys by fingerprint, primary first.
func (n *Node) Keys() ([]cluster.KeyInfo, error) {
	kr := n.keyring()
	if kr == nil {
		return nil, errNoKeyring
	}
	return kr.List(), nil
}

// RotateKeyring carries out a keyring change on this node and every live
// peer. Install reaches this node first and then the peers; use and remove
// reach the peers first, so no node signs with a key that another does not
// hold yet. The result says which nodes applied it; a node that was down
// must be given the change when it is back (every step is idempotent).
func (n *Node) RotateKeyring(ctx context.Context, req KeyringRequest) (KeyringResult, error) {
	kr := n.keyring()
	if kr == nil {
		return KeyringResult{}, errNoKeyring
	}
	op := KeyringOp{Op: req.Op, ID: req.ID}
	var res KeyringResult
	switch req.Op {
	case KeyringInstall:
		secret, err := base64.StdEncoding.DecodeString(req.Secret)
		if err != nil {
			return res, fmt.Errorf("%w: secret must be base64", ErrInvalid)
		}
		if res.ID, err = cluster.Fingerprint(secret); err != nil {
			return res, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if err := kr.Install(secret); err != nil {
			return res, keyringErr(err)
		}
		res.Nodes = append(res.Nodes, KeyringNodeResult{Node: n.id.String(), OK: true})
		if op.Key, err = kr.Wrap(secret); err != nil {
			return res, err
		}
		res.Nodes = append(res.Nodes, n.keyringPeers(ctx, op)...)
	case KeyringUse, KeyringRemove:
		if req.ID == "" {
			return res, fmt.Errorf("%w: %s needs the key's id", ErrInvalid, req.Op)
		}
		res.ID = req.ID
		check := kr.CanRemove
		if req.Op == KeyringUse {
			check = kr.CanUse
		}
		if err := check(req.ID); err != nil {
			// A change this node would refuse (an unknown key, removing
			// the primary) reaches no peer.
			return res, keyringErr(err)
		}
		res.Nodes = n.keyringPeers(ctx, op)
		if err := n.applyKeyring(kr, op); err != nil {
			return res, keyringErr(err)
		}
		res.Nodes = append(res.Nodes, KeyringNodeResult{Node: n.id.String(), OK: true})
	default:
		return res, fmt.Errorf("%w: keyring op %q: want install, use or remove", ErrInvalid, req.Op)
	}
	res.Keys = kr.List()
	return res, nil
}

// keyringPeers sends op to every live peer at once.
func (n *Node) keyringPeers(ctx context.Context, op KeyringOp) []KeyringNodeResult {
	peers := n.peers(n.id)
	out := make([]KeyringNodeResult, len(peers))
	eachPeer(peers, func(i int, p cluster.Member) {
		out[i] = KeyringNodeResult{Node: p.ID.String(), OK: true}
		var ok map[string]bool
		if err := n.cl.client.Peer(p.PrivateAddr).CallJSON(ctx, http.MethodPost, cluster.PathKeyring, op, &ok); err != nil {
			out[i] = KeyringNodeResult{Node: p.ID.String(), Error: err.Error()}
		}
	})
	return out
}

// ApplyKeyring carries out a peer's keyring change on this node.
func (n *Node) ApplyKeyring(ctx context.Context, op KeyringOp) error {
	kr := n.keyring()
	if kr == nil {
		return errNoKeyring
	}
	return keyringErr(n.applyKeyring(kr, op))
}

func (n *Node) applyKeyring(kr *cluster.Keyring, op KeyringOp) error {
	var err error
	switch op.Op {
	case KeyringInstall:
		var secret []byte
		if secret, err = kr.Unwrap(op.Key); err == nil {
			err = kr.Install(secret)
		}
	case KeyringUse:
		err = kr.Use(op.ID)
	case KeyringRemove:
		err = kr.Remove(op.ID)
	default:
		err = fmt.Errorf("%w: keyring op %q", ErrInvalid, op.Op)
	}
	if err == nil {
		n.log.Info("cluster keyring changed", "op", op.Op, "keys", kr.List())
	}
	return err
}

// keyringErr makes a keyring refusal a client error (409).
func keyringErr(err error) error {
	if errors.Is(err, cluster.ErrKeyring) {
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return err
}
