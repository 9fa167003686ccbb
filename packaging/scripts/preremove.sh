#!/bin/sh
# prerm of the p2pgrid package: stop the gateway before its binary goes.
set -e

if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl stop p2pgrid.service || true
fi
exit 0
