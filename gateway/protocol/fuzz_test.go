package protocol

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/p2pgrid/p2pgrid/auction"
)

// The fuzz targets check that no decoder panics, that every rejection is a
// *RejectError with a reason, and that an accepted message re-encodes to
// something that decodes to the same value and encodes to the same bytes.
// The seeds are the documented examples and variations of them.

// mustReason fails t if err carries no reason.
func mustReason(t *testing.T, err error) {
	t.Helper()
	if ReasonOf(err) == "" {
		t.Fatalf("rejection without a reason: %v", err)
	}
}

func FuzzDecodeOrder(f *testing.F) {
	r, m := newTestRoster(f, testCommunity), testMarket
	for _, o := range exampleOrders {
		good := sign(f, o)
		f.Add(good)
		f.Add(bytes.Replace(good, []byte(`"kwh":"`), []byte(`"kwh":"0`), 1))
		f.Add(bytes.Replace(good, []byte(`"gateway":"home`), []byte(`"gateway":"h\u006fme`), 1))
		f.Add(bytes.Replace(good, []byte(`"v":1`), []byte(`"v":1,"v":1`), 1))
		f.Add(bytes.Replace(good, []byte(`"price":"`), []byte(`"price":"-`), 1))
	}
	for _, steps := range [][]Step{exampleSteps, {{auction.Sell, 2000, 200000}, {auction.Buy, 1500, 80000}}} {
		good := signSteps(f, "home2", steps)
		f.Add(good)
		f.Add(bytes.Replace(good, []byte(`"v":2`), []byte(`"v":1`), 1))
		f.Add(bytes.Replace(good, []byte(`"kwh":"`), []byte(`"kwh":"0`), 1))
		f.Add(bytes.Replace(good, []byte(`},{`), []byte(`},{},{`), 1))
	}
	for _, s := range []string{``, `{}`, `[]`, `null`, `{"v":1}`, `{"v":1,"sig":""}`, `{"kwh":1e999}`, `{"a":{"b":[1,2,{}]}}`, `{"v":2,"steps":[]}`, `{"v":2,"steps":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := DecodeOrder(data)
		if err != nil {
			mustReason(t, err)
			return
		}
		enc := msg.Encode()
		again, err := DecodeOrder(enc)
		if err != nil {
			t.Fatalf("re-encoded order rejected: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(again, msg) || !bytes.Equal(again.Encode(), enc) {
			t.Fatalf("order does not round-trip:\n%+v\n%+v", msg, again)
		}
		if os, err := msg.Verify(r, m); err != nil {
			mustReason(t, err)
		} else {
			if len(os) != 1 && len(os) != len(msg.Steps) {
				t.Fatalf("verified %d orders from a message of %d steps", len(os), len(msg.Steps))
			}
			steps := make([]Step, len(os))
			for i, o := range os {
				want := msg.Gateway
				if msg.Steps != nil {
					want = StepID(msg.Gateway, i)
				}
				if m.CheckOrder(o) != nil || o.ID != want || o.Participant != msg.Gateway {
					t.Fatalf("verified an order the market rejects: %+v", o)
				}
				steps[i] = Step{o.Side, o.Qty, o.Price}
			}
			if msg.Steps != nil && CheckSteps(m, msg.Gateway, steps) != nil {
				t.Fatalf("verified steps CheckSteps rejects: %+v", os)
			}
		}
	})
}

func FuzzDecodeBook(f *testing.F) {
	r, m := newTestRoster(f, testCommunity), testMarket
	o1, o2 := sign(f, exampleOrders[0]), sign(f, exampleOrders[1])
	f.Add(bookOf("c1", testInterval, "home1"))
	f.Add(bookOf("c1", testInterval, "home1", o1))
	f.Add(bookOf("c1", testInterval, "home1", o1, o2))
	f.Add(bookOf("c1", testInterval, "home1", o2, o1))
	f.Add(bookOf("c1", testInterval, "home1", o1, o1))
	f.Add(bookOf("c1", testInterval, "home1", o1, signSteps(f, "home2", exampleSteps)))
	f.Add(bookOf("c1", testInterval, "home2", bytes.Replace(o1, []byte(`"kwh":"1.234"`), []byte(`"kwh":"1.2340"`), 1)))
	for _, s := range []string{`{"v":1,"orders":null}`, `{"orders":[{}]}`, `{"v":1,"community":"c1","interval":"2026-11-22T12:15Z","clearer":"home1","orders":[1]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBook(data)
		if err != nil {
			mustReason(t, err)
			return
		}
		enc := b.Encode()
		again, err := DecodeBook(enc)
		if err != nil {
			t.Fatalf("re-encoded book rejected: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(again, b) || !bytes.Equal(again.Encode(), enc) {
			t.Fatalf("book does not round-trip:\n%s\n%s", enc, again.Encode())
		}
		book, err := b.Verify(r, m)
		if err != nil {
			mustReason(t, err)
			return
		}
		if _, err := m.Clear(book); err != nil {
			t.Fatalf("verified book does not clear: %v", err)
		}
		// One auction order per v1 message and per step of a v2 one.
		n := 0
		for _, raw := range b.Orders {
			o, _ := DecodeOrder(raw) // checked by DecodeBook
			n += max(1, len(o.Steps))
		}
		if n != len(book.Orders) {
			t.Fatalf("%d auction orders from messages worth %d", len(book.Orders), n)
		}
	})
}

func FuzzDecodeResult(f *testing.F) {
	r := newTestRoster(f, testCommunity)
	// The decoder reads only book_sha256 of the embedded result, so the
	// seeds are results of an empty book: small inputs keep the fuzzer's
	// minimisation (quadratic in the input's length) short.
	res, err := testMarket.Clear(auction.Book{Interval: testInterval, Orders: []auction.Order{}})
	if err != nil {
		f.Fatal(err)
	}
	result, err := res.MarshalJSON()
	if err != nil {
		f.Fatal(err)
	}
	for _, clearer := range []string{"home1", "home2"} {
		signed, err := EncodeResult(testKey(clearer), testCommunity, testInterval, clearer, result)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(signed)
		f.Add(bytes.Replace(signed, []byte(`"result":{`), []byte(`"result":{ `), 1))
		f.Add(bytes.Replace(signed, []byte(`"price":null`), []byte(`"price":"1"`), 1))
	}
	for _, s := range []string{`{"v":1,"result":null}`, `{"result":{"book_sha256":"00"}}`, `{"result":{"book_sha256":1,"book_sha256":2}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := DecodeResult(data)
		if err != nil {
			mustReason(t, err)
			return
		}
		enc := msg.Encode()
		again, err := DecodeResult(enc)
		if err != nil {
			t.Fatalf("re-encoded result rejected: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(again, msg) || !bytes.Equal(again.Encode(), enc) {
			t.Fatalf("result does not round-trip:\n%s\n%s", enc, again.Encode())
		}
		if err := msg.Verify(r); err != nil {
			mustReason(t, err)
		}
	})
}

func FuzzParseRoster(f *testing.F) {
	good := newTestRoster(f, testCommunity).Encode()
	f.Add(good)
	f.Add(bytes.Replace(good, []byte(`,"clearer":true`), nil, 1))
	f.Add(bytes.Replace(good, []byte(`"home2"`), []byte(`"home1"`), 1))
	f.Add([]byte(`{"community":"c1","gateways":[{"id":"a","public_key":"ed25519:AAAA","clearer":true}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRoster(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "roster: ") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		enc := r.Encode()
		again, err := ParseRoster(enc)
		if err != nil {
			t.Fatalf("re-encoded roster rejected: %v\n%s", err, enc)
		}
		if !bytes.Equal(again.Encode(), enc) {
			t.Fatalf("roster does not round-trip:\n%s\n%s", enc, again.Encode())
		}
		for _, m := range r.Gateways {
			if k, ok := again.Key(m.ID); !ok || !k.Equal(m.PublicKey) || again.IsClearer(m.ID) != m.Clearer {
				t.Fatalf("member %q lost in the round trip", m.ID)
			}
		}
	})
}

func FuzzDecodeTelemetry(f *testing.F) {
	good, err := exampleTelemetry().Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"v":1,"gateway":"g","time":"2026-11-22T13:16:05.123456789+01:00","grid_w":1e-7,"pv_w":-0}`))
	f.Add([]byte(`{"v":1,"gateway":"g","time":"2026-11-22T12:16:05Z","import_wh":9223372036854775807}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tm, err := DecodeTelemetry(data)
		if err != nil {
			mustReason(t, err)
			return
		}
		enc, err := tm.Encode()
		if err != nil {
			t.Fatalf("accepted telemetry does not encode: %v", err)
		}
		again, err := DecodeTelemetry(enc)
		if err != nil {
			t.Fatalf("re-encoded telemetry rejected: %v\n%s", err, enc)
		}
		enc2, _ := again.Encode()
		if !bytes.Equal(enc2, enc) {
			t.Fatalf("telemetry does not round-trip:\n%s\n%s", enc, enc2)
		}
	})
}

func FuzzDecodeStatus(f *testing.F) {
	for _, s := range []*Status{exampleStatusOnline(), exampleStatusOffline()} {
		data, err := s.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"v":1,"gateway":"g","state":"offline","version":"\u00e9","time":"2026-11-22T12:16:05Z","alarms":[{"kind":"x","detail":"\ud800"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeStatus(data)
		if err != nil {
			mustReason(t, err)
			return
		}
		enc, err := s.Encode()
		if err != nil {
			t.Fatalf("accepted status does not encode: %v", err)
		}
		again, err := DecodeStatus(enc)
		if err != nil {
			t.Fatalf("re-encoded status rejected: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(again, s) {
			t.Fatalf("status does not round-trip:\n%+v\n%+v", s, again)
		}
	})
}

func FuzzParseTopic(f *testing.F) {
	tp, _ := NewTopics(testCommunity)
	for _, s := range []string{
		tp.Orders("home1"), tp.Book(testInterval), tp.Result(testInterval), tp.ResultLatest(),
		tp.Telemetry("home1"), tp.Status("home1"), tp.Roster(), tp.All(), tp.OrdersAll(), "p2pgrid/v1/c1/book/latest",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		kind, community, key, err := ParseTopic(topic)
		if err != nil {
			return
		}
		tp, err := NewTopics(community)
		if err != nil {
			t.Fatalf("ParseTopic accepted community %q that NewTopics rejects: %v", community, err)
		}
		var built string
		switch kind {
		case KindOrders:
			built = tp.Orders(key)
		case KindBook:
			built = tp.Book(key)
		case KindResult:
			built = tp.Result(key)
		case KindTelemetry:
			built = tp.Telemetry(key)
		case KindStatus:
			built = tp.Status(key)
		case KindRoster:
			built = tp.Roster()
		default:
			t.Fatalf("unknown kind %q", kind)
		}
		if built != topic {
			t.Fatalf("ParseTopic(%q) = %q, %q, %q, which builds %q", topic, kind, community, key, built)
		}
	})
}
