package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Error is one thing wrong with a configuration: the key it is about, and
// where the key's value came from (a line of the file, an environment
// variable, or neither for a default or a value set in code).
type Error struct {
	File string // the file given to Load; "" for Parse and Validate
	Line int    // the line of the file, 0 when not from the file
	Env  string // the environment variable that set the value, if one did
	Key  string // the key's full path (market.interval, devices[1].url); "" for the whole file
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config")
	if e.File != "" {
		b.WriteString(" " + e.File)
	}
	b.WriteString(": ")
	switch {
	case e.Env != "":
		b.WriteString("environment " + e.Env + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// KeyError returns an *Error about key (a full path such as "roster" or
// "devices[1].profile"), placed where the key's value came from: its line
// of the file or its environment variable. A check made outside this
// package (the roster, a profile file) reports with it in the same style.
func (c *Config) KeyError(key string, err error) *Error {
	return c.src.errorf(key, "%w", err)
}

// Join returns errs as one error, in file order: the *Errors about a line
// of the file by line, then the others (environment variables, defaults,
// errors of no key) in the order given, then "further errors not shown"
// if one of errs says so. Joined errors in errs are flattened; nil errors
// are dropped. Its message has one error per line. It returns nil if no
// error is left.
func Join(errs ...error) error {
	var flat []error
	var walk func(err error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if err != nil {
			flat = append(flat, err)
		}
	}
	for _, err := range errs {
		walk(err)
	}
	rank := func(err error) int {
		var e *Error
		switch {
		case errors.Is(err, errTooMany):
			return 1 << 30
		case errors.As(err, &e) && e.Line > 0 && e.Env == "":
			return e.Line
		}
		return 1<<30 - 1
	}
	slices.SortStableFunc(flat, func(a, b error) int { return cmp.Compare(rank(a), rank(b)) })
	if len(flat) == 0 {
		return nil
	}
	return errors.Join(flat...)
}

// origin is where a value came from: a line of the file or a variable.
type origin struct {
	line int
	env  string
}

// source is the file a configuration came from and where each of its keys
// was set.
type source struct {
	file    string
	origins map[string]origin // by key path
}

// errorf returns an *Error about key, placed where key's value came from.
// It is safe on a nil source (a Config built in code).
func (s *source) errorf(key, format string, args ...any) *Error {
	e := &Error{Key: key, Err: fmt.Errorf(format, args...)}
	if s != nil {
		e.File = s.file
		o := s.origins[key]
		e.Line, e.Env = o.line, o.env
	}
	return e
}

// at returns an *Error about key at a line of the file.
func (s *source) at(line int, key string, err error) *Error {
	return &Error{File: s.file, Line: line, Key: key, Err: err}
}

// set records where key's value came from.
func (s *source) set(key string, o origin) { s.origins[key] = o }
