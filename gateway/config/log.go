package config

import "strings"

// Log is how the gateway logs: the root logger cmd/p2pgrid builds, whose
// --log-level and --log-format flags win over these when given.
type Log struct {
	// Level is the least severe level logged: debug, info, warn or error.
	// Default info.
	Level string `yaml:"level"`
	// Format is text (logfmt-like key=value lines) or json (one JSON object
	// a line). Default text.
	Format string `yaml:"format"`
}

// The values log.level and log.format take, the first the default.
var (
	LogLevels  = []string{"info", "debug", "warn", "error"}
	LogFormats = []string{"text", "json"}
)

// DefaultLog is the log section's default.
func DefaultLog() Log { return Log{Level: LogLevels[0], Format: LogFormats[0]} }

func (v *validator) log() {
	check := func(key, what, value string, allowed []string) {
		for _, a := range allowed {
			if value == a {
				return
			}
		}
		v.fail(key, "%q is not a %s (want %s)", value, what, oneOf(allowed))
	}
	check("log.level", "log level", v.c.Log.Level, LogLevels)
	check("log.format", "log format", v.c.Log.Format, LogFormats)
}

// oneOf lists values as "a, b or c".
func oneOf(values []string) string {
	if len(values) < 2 {
		return strings.Join(values, "")
	}
	return strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
}
