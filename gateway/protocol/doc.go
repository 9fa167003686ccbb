// Package protocol is the MQTT interface of p2pgrid: the topics, the JSON
// payloads and their Ed25519 signatures, as a neighbour's gateway, the
// community's clearer, a phone app and an operator's tools all read them.
// docs/mqtt.md describes every topic and payload with examples.
//
// It is pure code: it builds and parses topics and encodes, decodes, signs
// and verifies messages, but holds no MQTT client, does no network I/O and
// reads no clock (times are passed in). The only file it touches is the
// gateway's key file (LoadOrCreateKey). It knows package auction's orders,
// books and results, and nothing of meters, settlement or the MQTT library.
//
// Every topic lives under p2pgrid/v1/<community>/ (see Topics):
//
//	orders/<gateway>     a gateway's signed order             QoS 1, not retained
//	book/<interval>      the sealed book of an interval       QoS 1, retained
//	result/<interval>    the clearer's signed result          QoS 1, retained
//	result/latest        the same bytes as the newest result  QoS 1, retained
//	telemetry/<gateway>  live power, rate-limited             QoS 1, not retained
//	status/<gateway>     online/offline (last will), alarms   QoS 1, retained
//	roster               the operator's signed roster version QoS 1, retained
//	                     (RosterMsg; a plain Roster without an operator key)
//
// Decoding is strict and bounded: a payload over its size limit, an unknown,
// repeated, missing or mistyped key, or a version other than 1 is rejected
// with an error naming what is wrong. Every decoder and Verify method returns
// a *RejectError whose Reason a clearer counts (ReasonOf). Signatures cover a
// canonical text naming the community, the interval and the signer, so a
// signed message cannot be replayed into another community or interval or
// passed off under another gateway's name.
package protocol
