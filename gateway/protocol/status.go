package protocol

import (
	"fmt"
	"time"

	"github.com/p2pgrid/p2pgrid/market"
)

// Status is a gateway's state, published retained on status/<gateway>:
// "online" when it connects, "offline" as its MQTT last will (set at
// connect time, so its Time is when that session began) and when it shuts
// down cleanly. It carries the gateway's open alarms and what it concluded
// about the latest intervals (Verified, left out when empty):
//
//	{"v":1,"gateway":"home2","state":"online","version":"v0.4.0","time":"2026-11-22T12:31:10Z",
//	 "alarms":[{"interval":"2026-11-22T12:15Z","kind":"mismatch","detail":"..."}],
//	 "verified":[{"interval":"2026-11-22T12:15Z","clearing":"mismatch"},
//	             {"interval":"2026-11-22T12:00Z","clearing":"ok","settlement":"ok"}]}
//
// A status is not signed: it is what the gateway says, for its operator
// and neighbours to see, and nothing trusts it for more.
type Status struct {
	Gateway string
	State   State
	Version string // the gateway's software version
	Time    time.Time
	Alarms  []Alarm // nil or empty: none
	// Verified is the gateway's verdict on its latest intervals, newest
	// first, at most MaxVerified.
	Verified []Verification
}

// Verification is a gateway's verdict on one interval: Clearing is
// VerdictOK when the published clearing verified, or the alarm kind it
// raised; Settlement likewise for the published settlement, "" (left out)
// while there is none.
type Verification struct {
	Interval   string
	Clearing   string
	Settlement string
}

// VerdictOK is a Verification's verdict of a check that passed.
const VerdictOK = "ok"

// State is whether a gateway is connected.
type State string

// The states.
const (
	StateOnline  State = "online"
	StateOffline State = "offline"
)

// Alarm is something a gateway wants its operator and neighbours to see.
type Alarm struct {
	Interval string // the interval id it is about, or "" (left out of the JSON)
	Kind     string // one of the Alarm* kinds, or a newer one: 1-64 of [a-z0-9_]
	Detail   string // for people; "" is left out of the JSON
}

// Alarm kinds. Decoders accept any well-formed kind, so that a newer gateway
// can add kinds without breaking older tools.
const (
	// AlarmMismatch: the published result differs from this gateway's own
	// clearing of the published book.
	AlarmMismatch = "mismatch"
	// AlarmMissingOwnOrder: this gateway's order is not in the sealed book.
	AlarmMissingOwnOrder = "missing_own_order"
	// AlarmBadBook: the published book does not verify.
	AlarmBadBook = "bad_book"
	// AlarmBadResult: the published result does not verify.
	AlarmBadResult = "bad_result"
	// AlarmNoResult: no result arrived for an interval in time.
	AlarmNoResult = "no_result"
	// AlarmMeterStale: the gateway's meter readings are stale.
	AlarmMeterStale = "meter_stale"
	// AlarmSettlementMismatch: the published settlement does not verify, or
	// differs from this gateway's settlement of the same signed figures.
	AlarmSettlementMismatch = "settlement_mismatch"
	// AlarmMeteredMissing: this gateway published its metered figures, but
	// the verified settlement of the interval does not hold them.
	AlarmMeteredMissing = "metered_missing"
	// AlarmSettlementMissing: this gateway published its metered figures,
	// but no settlement that verifies arrived in time.
	AlarmSettlementMissing = "settlement_missing"
	// AlarmMeteredRefused: a clearer refused a gateway's signed metered
	// figures (an interval not over, or beyond the connection's bounds) and
	// settles the interval without them.
	AlarmMeteredRefused = "metered_refused"
	// AlarmConnectionUnstable: the broker keeps closing this gateway's
	// connection (a session takeover, or a failing network).
	AlarmConnectionUnstable = "connection_unstable"
)

// AlarmKinds lists every alarm kind this version raises.
var AlarmKinds = []string{
	AlarmMismatch, AlarmMissingOwnOrder, AlarmBadBook, AlarmBadResult, AlarmNoResult, AlarmMeterStale,
	AlarmSettlementMismatch, AlarmMeteredMissing, AlarmSettlementMissing, AlarmMeteredRefused, AlarmConnectionUnstable,
}

// Limits of a status message.
const (
	MaxStatusSize   = 32 << 10
	MaxAlarms       = 32
	MaxVerified     = 8
	maxVersionText  = 64
	maxAlarmDetail  = 512
	maxAlarmKindLen = 64
)

// Encode checks s and writes it in its JSON form; "alarms" is always
// present.
func (s *Status) Encode() ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	ts, _ := timeText(s.Time) // checked
	b := append([]byte(nil), `{"v":1`...)
	b = appendField(b, "gateway", s.Gateway)
	b = appendField(b, "state", string(s.State))
	b = appendField(b, "version", s.Version)
	b = appendField(b, "time", ts)
	b = append(b, `,"alarms":[`...)
	for i, a := range s.Alarms {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		if a.Interval != "" {
			b = append(b, `"interval":`...)
			b = append(appendString(b, a.Interval), ',')
		}
		b = append(b, `"kind":`...)
		b = appendString(b, a.Kind)
		if a.Detail != "" {
			b = appendField(b, "detail", a.Detail)
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	if len(s.Verified) > 0 {
		b = append(b, `,"verified":[`...)
		for i, v := range s.Verified {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"interval":`...)
			b = appendString(b, v.Interval)
			if v.Clearing != "" {
				b = appendField(b, "clearing", v.Clearing)
			}
			if v.Settlement != "" {
				b = appendField(b, "settlement", v.Settlement)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// check checks what Encode writes and DecodeStatus reads.
func (s *Status) check() error {
	if err := CheckID(s.Gateway); err != nil {
		return fmt.Errorf("status: gateway %q: %w", s.Gateway, err)
	}
	if s.State != StateOnline && s.State != StateOffline {
		return fmt.Errorf("status of %q: state %q (want online or offline)", s.Gateway, s.State)
	}
	if s.Version == "" {
		return fmt.Errorf("status of %q: empty version", s.Gateway)
	}
	if err := checkText(s.Version, maxVersionText); err != nil {
		return fmt.Errorf("status of %q: version: %w", s.Gateway, err)
	}
	if _, err := timeText(s.Time); err != nil {
		return fmt.Errorf("status of %q: %w", s.Gateway, err)
	}
	if len(s.Alarms) > MaxAlarms {
		return fmt.Errorf("status of %q: %d alarms (at most %d)", s.Gateway, len(s.Alarms), MaxAlarms)
	}
	for i, a := range s.Alarms {
		if err := a.check(); err != nil {
			return fmt.Errorf("status of %q: alarms[%d]: %w", s.Gateway, i, err)
		}
	}
	if len(s.Verified) > MaxVerified {
		return fmt.Errorf("status of %q: %d verified intervals (at most %d)", s.Gateway, len(s.Verified), MaxVerified)
	}
	for i, v := range s.Verified {
		if _, err := market.ParseInterval(v.Interval); err != nil {
			return fmt.Errorf("status of %q: verified[%d]: %w", s.Gateway, i, err)
		}
		for _, verdict := range []struct{ name, v string }{{"clearing", v.Clearing}, {"settlement", v.Settlement}} {
			if verdict.v != "" && !isKind(verdict.v) {
				return fmt.Errorf("status of %q: verified[%d]: %s %.70q: want ok or an alarm kind, 1-%d characters of [a-z0-9_]",
					s.Gateway, i, verdict.name, verdict.v, maxAlarmKindLen)
			}
		}
	}
	return nil
}

// isKind reports whether k is 1-maxAlarmKindLen characters of [a-z0-9_].
func isKind(k string) bool {
	if k == "" || len(k) > maxAlarmKindLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

func (a Alarm) check() error {
	if !isKind(a.Kind) {
		return fmt.Errorf("kind %.70q: want 1-%d characters of [a-z0-9_]", a.Kind, maxAlarmKindLen)
	}
	if a.Interval != "" {
		if _, err := market.ParseInterval(a.Interval); err != nil {
			return err
		}
	}
	if err := checkText(a.Detail, maxAlarmDetail); err != nil {
		return fmt.Errorf("detail: %w", err)
	}
	return nil
}

// DecodeStatus reads a status message strictly (see DecodeOrder).
// Errors are *RejectError.
func DecodeStatus(data []byte) (*Status, error) {
	if len(data) > MaxStatusSize {
		return nil, reject(RejectOversize, "status: %d bytes (at most %d)", len(data), MaxStatusSize)
	}
	s := &Status{}
	var state string
	err := decodeObject(data,
		field{"v", true, version},
		field{"gateway", true, str(&s.Gateway)},
		field{"state", true, str(&state)},
		field{"version", true, str(&s.Version)},
		field{"time", true, timestamp(&s.Time)},
		field{"alarms", true, func(raw []byte) error {
			s.Alarms = []Alarm{}
			return walkArray(raw, func(i int, raw []byte) error {
				if i == MaxAlarms {
					return fmt.Errorf("more than %d alarms", MaxAlarms)
				}
				var a Alarm
				err := decodeObject(raw,
					field{"kind", true, str(&a.Kind)},
					field{"interval", false, str(&a.Interval)},
					field{"detail", false, str(&a.Detail)},
				)
				if err != nil {
					return fmt.Errorf("alarms[%d]: %w", i, err)
				}
				s.Alarms = append(s.Alarms, a)
				return nil
			})
		}},
		field{"verified", false, func(raw []byte) error {
			return walkArray(raw, func(i int, raw []byte) error {
				if i == MaxVerified {
					return fmt.Errorf("more than %d verified intervals", MaxVerified)
				}
				var v Verification
				err := decodeObject(raw,
					field{"interval", true, str(&v.Interval)},
					field{"clearing", false, str(&v.Clearing)},
					field{"settlement", false, str(&v.Settlement)},
				)
				if err != nil {
					return fmt.Errorf("verified[%d]: %w", i, err)
				}
				s.Verified = append(s.Verified, v)
				return nil
			})
		}},
	)
	if err != nil {
		return nil, reject(RejectMalformed, "status: %w", err)
	}
	s.State = State(state)
	if err := s.check(); err != nil {
		return nil, reject(RejectMalformed, "%w", err)
	}
	return s, nil
}
