// Package deploy holds no Go code: it is the folder of the operator's
// container stack (compose.yaml, with ../Dockerfile), and its test checks
// what can be checked without a container engine (README.md).
package deploy
