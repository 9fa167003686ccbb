package protocol

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/internal/golden"
)

// The example roster version is signed by the community operator's key,
// valid from testInterval.
var (
	exampleOperator  = testKey("community-operator")
	exampleValidFrom = time.Date(2026, 11, 22, 12, 15, 0, 0, time.UTC)
)

// examplePayloads are the documented example messages, by file name under
// testdata/examples, as the code produces them.
func examplePayloads(t *testing.T) map[string][]byte {
	t.Helper()
	_, resultMsg := exampleResult(t)
	enc := func(b []byte, err error) []byte {
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return map[string][]byte{
		"roster.json":         newTestRoster(t, testCommunity).Encode(),
		"roster-version.json": enc(EncodeRoster(exampleOperator, newTestRoster(t, testCommunity), 3, exampleValidFrom)),
		"order-home1.json":    sign(t, exampleOrders[0]),
		"order-home2.json":    sign(t, exampleOrders[1]),
		"order-home3.json":    sign(t, exampleOrders[2]),
		"order-home2-v2.json": signSteps(t, "home2", exampleSteps),
		"book.json":           exampleBook(t),
		"result.json":         resultMsg,
		"telemetry.json":      enc(exampleTelemetry().Encode()),
		"status-online.json":  enc(exampleStatusOnline().Encode()),
		"status-offline.json": enc(exampleStatusOffline().Encode()),
	}
}

// TestExamples checks the example payloads against testdata/examples (rewrite
// them with -update and review the diff) and that docs/mqtt.md shows each of
// them verbatim, so the documentation cannot drift from the code.
func TestExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/mqtt.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range examplePayloads(t) {
		path := filepath.Join("testdata", "examples", name)
		golden.Check(t, path, append(got, '\n'))
		if !bytes.Contains(doc, got) {
			t.Errorf("docs/mqtt.md does not show %s verbatim:\n%s", name, got)
		}
	}
	// The canonical texts shown are the ones signed.
	result, _ := exampleResult(t)
	sum := sha256.Sum256(result)
	for _, text := range []string{
		string(orderText(testCommunity, testInterval, "home1", auction.Sell, "1.234", "0.12")),
		string(stepsText(testCommunity, testInterval, "home2", testMarket, []auction.Order{
			{Side: auction.Buy, Qty: 1000, Price: 250000}, {Side: auction.Buy, Qty: 3000, Price: 120000}})),
		string(resultText(testCommunity, testInterval, "home1", result)),
		"result " + hex.EncodeToString(sum[:]) + "\n",
		string(rosterText(testCommunity, 3, testInterval, newTestRoster(t, testCommunity).Encode())),
	} {
		if !strings.Contains(string(doc), text) {
			t.Errorf("docs/mqtt.md does not show the canonical text\n%s", text)
		}
	}
	// Every topic kind, reject reason and alarm kind is documented.
	var names []string
	for _, k := range []string{KindOrders, KindBook, KindResult, KindTelemetry, KindStatus, KindRoster, KindMetered, KindSettlement} {
		names = append(names, "`"+k)
	}
	for _, r := range RejectReasons {
		names = append(names, "`"+string(r)+"`")
	}
	for _, a := range AlarmKinds {
		names = append(names, "`"+a+"`")
	}
	for _, n := range names {
		if !strings.Contains(string(doc), n) {
			t.Errorf("docs/mqtt.md does not mention %s", n)
		}
	}
}
