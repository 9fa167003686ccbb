package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// Every p2pgrid command the operator's and the home owner's pages show,
// in a code block or inline, is one this binary has, with flags it takes:
// each runs with --help appended (which checks the subcommand and every
// flag, and runs nothing).
func TestCommunityDocCommands(t *testing.T) {
	for doc, least := range map[string]int{"../../docs/community.md": 10, "../../docs/install.md": 8, "../../docs/operator.md": 5} {
		cmds := docCommands(t, doc)
		if len(cmds) < least {
			t.Errorf("found only %d p2pgrid commands in %s: %q", len(cmds), doc, cmds)
		}
		for _, cmd := range cmds {
			args := append(strings.Fields(cmd), "--help")
			if code, out, errOut := runCLI(t, "", args...); code != 0 || !strings.Contains(out, "Usage:") {
				t.Errorf("%s: \"p2pgrid %s\": exit %d, stderr %q", doc, cmd, code, errOut)
			}
		}
	}
}

// inlineCode is a code span of Markdown prose, which may wrap lines.
var inlineCode = regexp.MustCompile("`([^`]+)`")

// docCommands returns the arguments of every p2pgrid command of a
// Markdown page: the lines of its code blocks, and its inline code,
// that start with "p2pgrid " (after "sudo " or "sudo -u USER "), without
// a shell redirection or comment.
func docCommands(t *testing.T, path string) []string {
	t.Helper()
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	add := func(line string) {
		line = strings.Join(strings.Fields(line), " ")
		line = strings.TrimPrefix(line, "sudo ")
		if rest, ok := strings.CutPrefix(line, "-u "); ok {
			_, line, _ = strings.Cut(rest, " ")
		}
		cmd, ok := strings.CutPrefix(line, "p2pgrid ")
		if !ok {
			return
		}
		cmd, _, _ = strings.Cut(cmd, " > ") // the shell's redirection
		cmd, _, _ = strings.Cut(cmd, " #")  // a comment
		cmds = append(cmds, cmd)
	}
	var prose strings.Builder
	inBlock := false
	for _, line := range strings.Split(string(doc), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			inBlock = !inBlock
			continue
		}
		if inBlock {
			add(trimmed)
		} else {
			prose.WriteString(line + "\n")
		}
	}
	for _, m := range inlineCode.FindAllStringSubmatch(prose.String(), -1) {
		add(m[1])
	}
	return cmds
}
