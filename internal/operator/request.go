package operator

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"

	"github.com/p2pgrid/p2pgrid/gateway/protocol"
)

// JoinRequest is what a home sends the operator to be admitted (`p2pgrid
// join --request` prints it, `p2pgrid community add --request` reads it):
//
//	{"v":1,"gateway":"home-17","public_key":"ed25519:..."}
//
// It holds no secret.
type JoinRequest struct {
	Version   int    `json:"v"`
	Gateway   string `json:"gateway"`
	PublicKey string `json:"public_key"`
}

// NewJoinRequest is the request of gateway id with its public key.
func NewJoinRequest(id string, pub ed25519.PublicKey) (*JoinRequest, error) {
	if err := protocol.CheckID(id); err != nil {
		return nil, bad("--home %q: %w", id, err)
	}
	return &JoinRequest{Version: 1, Gateway: id, PublicKey: protocol.PublicKeyString(pub)}, nil
}

// Encode writes the request as one line of JSON.
func (r *JoinRequest) Encode() []byte {
	b, _ := json.Marshal(r)
	return append(b, '\n')
}

// ParseJoinRequest reads a request strictly and returns the gateway id and
// its public key.
func ParseJoinRequest(data []byte) (string, ed25519.PublicKey, error) {
	var r JoinRequest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return "", nil, bad("join request: %w", err)
	}
	if r.Version != 1 {
		return "", nil, bad("join request: version %d (this p2pgrid reads version 1)", r.Version)
	}
	if err := protocol.CheckID(r.Gateway); err != nil {
		return "", nil, bad("join request: gateway %q: %w", r.Gateway, err)
	}
	pub, err := protocol.ParsePublicKey(r.PublicKey)
	if err != nil {
		return "", nil, bad("join request: public_key: %w", err)
	}
	return r.Gateway, pub, nil
}
