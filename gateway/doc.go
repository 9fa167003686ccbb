// Package gateway is the edge daemon of p2pgrid: it turns a home's meter
// readings into signed orders, exchanges them with the neighbours over MQTT,
// clears or verifies each interval with package auction, and hands settled
// trades to package settlement.
//
// It is built in a later issue; for now it holds only this description so
// the layout tells the architecture.
package gateway
