module github.com/p2pgrid/p2pgrid

go 1.26.8

require (
	github.com/eclipse/paho.mqtt.golang v1.5.0
	github.com/goburrow/modbus v0.1.0
	github.com/goburrow/serial v0.1.0
	github.com/mochi-mqtt/server/v2 v2.7.9
	github.com/shopspring/decimal v1.6.0
	github.com/simonvetter/modbus v1.6.3
	github.com/spf13/cobra v1.10.2
	go.yaml.in/yaml/v3 v3.0.6
	pgregory.net/rapid v1.3.0
)

require (
	github.com/gorilla/websocket v1.5.3 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/rs/xid v1.4.0 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
	golang.org/x/net v0.43.0 // indirect
	golang.org/x/sync v0.7.0 // indirect
)
