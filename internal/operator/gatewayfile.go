package operator

import (
	"crypto/ed25519"
	"fmt"
	"strconv"
	"strings"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
)

// gatewayFile is what a generated gateway configuration says; everything
// else keeps its default.
type gatewayFile struct {
	Gateway, Community string
	Clearer            config.ClearerRole
	DataDir, Roster    string
	Broker, Username   string
	PasswordFile       string
	CAFile             string
	OperatorKey        ed25519.PublicKey
	// Made says who wrote the file, for its first comment line.
	Made string
}

// quote writes s as a YAML double-quoted scalar (Go's escapes are YAML's).
func quote(s string) string { return strconv.Quote(s) }

// yaml writes the configuration with the commented structure of
// configs/gateway.example.yaml: the keys it sets, the devices to fill in,
// and the market left at its defaults, which every gateway of the
// community shares.
func (g gatewayFile) yaml() []byte {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# p2pgrid gateway configuration of %s in community %s, %s.\n", g.Gateway, g.Community, g.Made)
	w("# configs/gateway.example.yaml explains every key; a key left out keeps\n# its default. Check it with: p2pgrid config check <this file>\n\n")
	w("# This gateway's id: its participant name in orders and the roster,\n# and its MQTT username.\ngateway: %s\n\n", quote(g.Gateway))
	w("# The community's id.\ncommunity: %s\n\n", quote(g.Community))
	w("# This gateway's part in clearing: \"\" (none), primary or standby.\nclearer: %s\n\n", quote(string(g.Clearer)))
	w("# The gateway's signing key (gateway.key), ledger and state.\ndata_dir: %s\n\n", quote(g.DataDir))
	w("# The community roster: the members and their public keys, signed by\n# the operator.\nroster: %s\n\n", quote(g.Roster))
	key := protocol.PublicKeyString(g.OperatorKey)
	w("# The community operator's public key: the key rosters are signed with.\n# The gateway takes a newer roster version signed with it from the\n# broker without a restart, and keeps it in its data directory.\noperator_key: %s\n\n", quote(key))
	w("mqtt:\n  # The community's broker, over TLS, and this gateway's login.\n")
	w("  broker: %s\n  username: %s\n  password_file: %s\n", quote(g.Broker), quote(g.Username), quote(g.PasswordFile))
	w("  # The community CA, which signed the broker's certificate.\n  ca_file: %s\n\n", quote(g.CAFile))
	if g.Clearer == config.ClearerNone {
		w("# The home's meters and inverters, read over Modbus: add them here as\n# configs/gateway.example.yaml shows, e.g.\n")
		w("#   - name: grid\n#     url: rtu:///dev/ttyUSB0?baud=9600&parity=N\n#     unit: 1\n#     profile: sdm630\n#     role: grid\n")
		w("# Without devices the gateway verifies every clearing and places no orders.\n")
	} else {
		w("# The clearer has no meters of its own.\n")
	}
	w("devices: []\n\n")
	w("# The market section is left at its defaults (15m intervals, 2m gate\n# closure): it must be the same on every gateway of the community.\n")
	return []byte(b.String())
}
