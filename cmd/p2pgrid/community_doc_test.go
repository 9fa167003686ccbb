package main

import (
	"os"
	"strings"
	"testing"
)

// Every p2pgrid command docs/community.md shows is one this binary has,
// with flags it takes: each runs with --help appended (which checks the
// subcommand and every flag, and runs nothing).
func TestCommunityDocCommands(t *testing.T) {
	doc, err := os.ReadFile("../../docs/community.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	inBlock := false
	for _, line := range strings.Split(string(doc), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			inBlock = !inBlock
			continue
		}
		if !inBlock {
			continue
		}
		cmd, ok := strings.CutPrefix(strings.TrimPrefix(trimmed, "sudo "), "p2pgrid ")
		if !ok {
			continue
		}
		cmd, _, _ = strings.Cut(cmd, " > ") // the shell's redirection
		n++
		args := append(strings.Fields(cmd), "--help")
		if code, out, errOut := runCLI(t, "", args...); code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("docs/community.md: %q: exit %d, stderr %q", trimmed, code, errOut)
		}
	}
	if n < 10 {
		t.Errorf("found only %d p2pgrid commands in docs/community.md", n)
	}
}
