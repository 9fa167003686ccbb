#!/bin/sh
# postrm of the p2pgrid package. Purge (dpkg removes the conffile
# /etc/p2pgrid/gateway.yaml) forgets that the service was enabled and
# removes /etc/p2pgrid if nothing else is left in it, but keeps what the
# owner put there (roster, CA, password file), /var/lib/p2pgrid (the
# gateway's key and its ledger: the community's record of what was traded)
# and the user p2pgrid, who owns it. Delete them by hand when they are no
# longer needed.
set -e

if [ "$1" = purge ]; then
	rm -f /etc/systemd/system/multi-user.target.wants/p2pgrid.service
	rmdir --ignore-fail-on-non-empty /etc/p2pgrid/devices /etc/p2pgrid 2>/dev/null || true
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
exit 0
