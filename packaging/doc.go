// Package packaging holds no Go code: it is the folder of the Debian
// package of p2pgrid (nfpm.yaml, the systemd unit p2pgrid.service and the
// maintainer scripts in scripts/), built by `make packages`. Its test
// builds the packages and inspects them (docs/install.md, "Packages").
package packaging
