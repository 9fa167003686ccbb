// Package record declares the ledger records of p2pgrid, once: their kinds,
// their keys and the JSON shape of their data. The gateway writes them
// (Entries for a settled interval, ReadingEntry for a device reading),
// settlement/influx maps them to InfluxDB points, and p2pgrid settlements
// and p2pgrid ledger show read them (Decode and the typed decoders).
//
// The shapes are a contract with what is already on disk, so they change
// only by adding: a reader ignores keys it does not know (a statement keeps
// them as Extra figures), and a key once written keeps its name and type.
// Keys are written in sorted order, as the gateway wrote them before this
// package declared them. testdata/*/records.jsonl holds the records of
// settled intervals, byte for byte (go test ./settlement/record -update
// rewrites them; review the diff). docs/ledger.md describes each kind.
//
// The package knows nothing of MQTT, Modbus, InfluxDB or files: it turns
// settlements and readings into ledger entries and ledger records back into
// values.
package record

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The record kinds, as ledger.Record.Kind holds them.
const (
	// KindClearing: the auction's clearing of an interval (Clearing); key
	// the interval id.
	KindClearing = "clearing"
	// KindTrade: one trade, settled (Trade); key the trade id.
	KindTrade = "trade"
	// KindStatement: one participant's statement of an interval
	// (Statement); key interval/participant. The kind is called
	// "settlement" on disk and in InfluxDB.
	KindStatement = "settlement"
	// KindInterval: the whole settlement of an interval, in its canonical
	// JSON form (settlement.IntervalSettlement); key the interval id.
	KindInterval = "interval"
	// KindBook: the sealed book of a settled interval, the message as
	// published and verified (Book); key the interval id.
	KindBook = "book"
	// KindResult: the signed result of a settled interval, the message as
	// published and verified (Result); key the interval id.
	KindResult = "result"
	// KindReading: one device reading per device and interval (Reading);
	// key gateway/device/interval.
	KindReading = "reading"
)

// Kinds lists every kind, in the order a settled interval's records are
// written, and the reading last.
var Kinds = []string{KindClearing, KindTrade, KindStatement, KindInterval, KindBook, KindResult, KindReading}

// ErrUnknownKind is wrapped by the errors about a kind not in Kinds.
var ErrUnknownKind = errors.New("unknown ledger record kind")

// CheckKind returns an error wrapping ErrUnknownKind, and naming the
// kinds there are, unless kind is one of Kinds.
func CheckKind(kind string) error {
	if slices.Contains(Kinds, kind) {
		return nil
	}
	return fmt.Errorf("kind %q: %w (the kinds are %s)", kind, ErrUnknownKind, strings.Join(Kinds, ", "))
}

// StatementKey is the key of a participant's statement of an interval.
func StatementKey(interval, participant string) string { return interval + "/" + participant }

// ReadingKey is the key of a device's reading for an interval: the gateway
// id, the configured device name and the interval id.
func ReadingKey(gateway, device, interval string) string {
	return gateway + "/" + device + "/" + interval
}
