// Package settlement turns cleared trades into money once the meters have
// counted what really flowed: metered delivery, imbalance, statements, the
// tamper-evident local ledger and the InfluxDB sink.
//
// It knows nothing of Modbus. It is built in a later issue; for now it holds
// only this description so the layout tells the architecture.
package settlement
