#!/bin/sh
# postinst of the p2pgrid package: the system user the gateway runs as, in
# group dialout for RS-485 adapters, and its data directory. The service is
# neither enabled nor started: the configuration must be edited first
# (docs/install.md). On an upgrade a running gateway restarts on the new
# binary.
set -e

case "$1" in
configure) ;;
*) exit 0 ;;
esac

if ! getent passwd p2pgrid >/dev/null; then
	useradd --system --user-group --home-dir /var/lib/p2pgrid --no-create-home \
		--shell /usr/sbin/nologin --comment "p2pgrid gateway" p2pgrid
fi
if getent group dialout >/dev/null; then
	usermod --append --groups dialout p2pgrid
fi
# The data directory (systemd's StateDirectory) exists before the first
# start, for `sudo -u p2pgrid p2pgrid key --data /var/lib/p2pgrid`.
if [ ! -d /var/lib/p2pgrid ]; then
	install -d -o p2pgrid -g p2pgrid -m 0750 /var/lib/p2pgrid
fi
# The configuration may hold the MQTT password: only root and the gateway
# read it. dpkg unpacks it as root:root 0640, on the first install and
# whenever an upgrade installs a new version of it, so this runs every time.
if [ -f /etc/p2pgrid/gateway.yaml ]; then
	chown root:p2pgrid /etc/p2pgrid/gateway.yaml
	chmod 0640 /etc/p2pgrid/gateway.yaml
fi

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload
	if [ -n "$2" ]; then
		systemctl try-restart p2pgrid.service ||
			echo "p2pgrid: the gateway did not restart; see: systemctl status p2pgrid" >&2
	fi
fi
exit 0
