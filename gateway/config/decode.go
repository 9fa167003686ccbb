package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"go.yaml.in/yaml/v3"

	"github.com/p2pgrid/p2pgrid/internal/yamlnode"
)

// The settings are the exported fields of Config and its sections, named by
// their yaml tags. The decoder walks the YAML node tree along them itself
// (rather than yaml.Node.Decode) so that every error has the key's full
// path and line, and every scalar, from the file or from the environment,
// goes through the one parser, setScalar.

var (
	durationType   = reflect.TypeFor[time.Duration]()
	decimalType    = reflect.TypeFor[decimal.Decimal]()
	decimalPtrType = reflect.TypeFor[*decimal.Decimal]()
	deviceType     = reflect.TypeFor[Device]()
)

// maxErrors bounds how many errors one file reports. Decoding stops at the
// limit, which also bounds the work a hostile file can cause (a list of
// aliases to a large mapping would otherwise be walked once per alias).
const maxErrors = 20

// MaxDevices bounds the devices list.
const MaxDevices = 64

// errTooMany ends a list of errors that was cut short.
var errTooMany = errors.New("further errors not shown")

// schemaField is one setting of a section: its key and field index.
type schemaField struct {
	key   string
	index int
}

// fieldsOf returns the settings of the section type t, in field order.
func fieldsOf(t reflect.Type) []schemaField {
	var fs []schemaField
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if key == "" || key == "-" {
			continue
		}
		fs = append(fs, schemaField{key: key, index: i})
	}
	return fs
}

// isScalar reports whether a setting of type t is one value (not a section
// or a list).
func isScalar(t reflect.Type) bool {
	switch t {
	case durationType, decimalType, decimalPtrType:
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int:
		return true
	}
	return false
}

// want describes what a setting of type t takes.
func want(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration"
	case t == decimalType || t == decimalPtrType:
		return "a decimal number"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Int:
		return "a whole number"
	case t.Kind() == reflect.Slice:
		return "a list"
	default:
		return "a mapping of settings"
	}
}

// setScalar parses text as the setting v. Errors quote text and say what
// was expected; they do not name the key.
func setScalar(v reflect.Value, text string) error {
	switch v.Type() {
	case durationType:
		d, err := parseDuration(text)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	case decimalType:
		d, err := parseDecimal(text)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(d))
		return nil
	case decimalPtrType:
		if text == "" { // an optional decimal: "" unsets it
			v.SetZero()
			return nil
		}
		d, err := parseDecimal(text)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(&d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(text)
	case reflect.Bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return fmt.Errorf("%q is not true or false", text)
		}
		v.SetBool(b)
	case reflect.Int:
		n, err := strconv.Atoi(text)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", text)
		}
		v.SetInt(int64(n))
	default:
		panic("config: setScalar on " + v.Type().String())
	}
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (write one with its unit, as in 30s, 2m or 15m)", s)
	}
	return d, nil
}

// maxDecimalLen bounds the text of a decimal setting, and the exponent has
// at most two digits, so no setting is a number whose arithmetic is costly.
const maxDecimalLen = 64

var decimalSyntax = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,2})?$`)

// parseDecimal parses s exactly: the YAML text of a number, or a string
// holding one. It never goes through float64.
func parseDecimal(s string) (decimal.Decimal, error) {
	if len(s) > maxDecimalLen {
		return decimal.Decimal{}, fmt.Errorf("a number of %d characters is too long (at most %d)", len(s), maxDecimalLen)
	}
	if !decimalSyntax.MatchString(s) {
		return decimal.Decimal{}, fmt.Errorf("%q is not a decimal number", s)
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("%q is not a decimal number", s)
	}
	return d, nil
}

// yamlLine matches the line yaml.v3 puts in its syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// decodeYAML overlays the YAML document data on c.
func decodeYAML(c *Config, data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return c.src.errorf("", "the file is empty")
		}
		return yamlError(c.src, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return yamlError(c.src, err)
		}
		return c.src.at(extra.Line, "", errors.New("a second YAML document: the file must hold one"))
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	d := &decoder{src: c.src}
	d.value(root, reflect.ValueOf(c).Elem(), "")
	return d.err()
}

func yamlError(src *source, err error) error {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return src.at(line, "", errors.New(m[2]))
	}
	return src.at(0, "", errors.New(strings.TrimPrefix(err.Error(), "yaml: ")))
}

// decoder collects the errors of one document.
type decoder struct {
	src  *source
	errs []error
}

func (d *decoder) fail(line int, key string, format string, args ...any) {
	if d.full() {
		return
	}
	d.errs = append(d.errs, d.src.at(line, key, fmt.Errorf(format, args...)))
	if d.full() {
		d.errs = append(d.errs, d.src.at(0, "", errTooMany))
	}
}

// full reports whether the decoder has as many errors as it reports, and
// so should stop.
func (d *decoder) full() bool { return len(d.errs) >= maxErrors }

func (d *decoder) err() error { return errors.Join(d.errs...) }

// value decodes node n into the setting v whose path is key. A null value
// (`key:` or `key: ~`) keeps the default.
func (d *decoder) value(n *yaml.Node, v reflect.Value, key string) {
	if d.full() {
		return
	}
	line := n.Line
	n = yamlnode.Deref(n)
	d.src.set(key, origin{line: line})
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	t := v.Type()
	switch {
	case isScalar(t):
		if n.Kind != yaml.ScalarNode {
			d.fail(line, key, "want %s, not %s", want(t), yamlnode.Describe(n))
			return
		}
		if err := setScalar(v, n.Value); err != nil {
			d.fail(line, key, "%w", err)
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.fail(line, key, "want %s, not %s", want(t), yamlnode.Describe(n))
			return
		}
		d.mapping(n, v, key)
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(line, key, "want %s, not %s", want(t), yamlnode.Describe(n))
			return
		}
		if len(n.Content) > MaxDevices {
			d.fail(line, key, "%d entries (at most %d)", len(n.Content), MaxDevices)
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, e := range n.Content {
			if t.Elem() == deviceType {
				s.Index(i).Set(reflect.ValueOf(defaultDevice()))
			}
			d.value(e, s.Index(i), fmt.Sprintf("%s[%d]", key, i))
		}
		v.Set(s)
	default:
		panic("config: no decoder for " + t.String())
	}
}

// mapping decodes the mapping n into the section v.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, key string) {
	fields := fieldsOf(v.Type())
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	for e, err := range yamlnode.Entries(n, keys) {
		if d.full() {
			return
		}
		if err != nil {
			d.fail(err.Line, key, "%w", err.Err)
			continue
		}
		j := slices.Index(keys, e.Key)
		d.value(e.Value, v.Field(fields[j].index), join(key, e.Key))
	}
}

func join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// walkScalars calls fn for every scalar setting under v (whose path is
// key), devices included, in field order.
func walkScalars(v reflect.Value, key string, fn func(key string, v reflect.Value)) {
	t := v.Type()
	switch {
	case isScalar(t):
		fn(key, v)
	case t.Kind() == reflect.Struct:
		for _, f := range fieldsOf(t) {
			walkScalars(v.Field(f.index), join(key, f.key), fn)
		}
	case t.Kind() == reflect.Slice:
		for i := range v.Len() {
			walkScalars(v.Index(i), fmt.Sprintf("%s[%d]", key, i), fn)
		}
	}
}

// EnvName returns the environment variable that overrides the setting
// with path key: "mqtt.password" is P2PGRID_MQTT_PASSWORD, "devices[0].url"
// is P2PGRID_DEVICES_0_URL.
func EnvName(key string) string {
	r := strings.NewReplacer("[", "_", "].", "_", "]", "", ".", "_")
	return EnvPrefix + strings.ToUpper(r.Replace(key))
}

var envDeviceIndex = regexp.MustCompile(`^` + EnvPrefix + `DEVICES_([0-9]+)_`)

// applyEnv overlays the P2PGRID_ variables of env on c.
func applyEnv(c *Config, env []string) error {
	type target struct {
		key string
		v   reflect.Value
	}
	targets := map[string]target{}
	var names []string
	walkScalars(reflect.ValueOf(c).Elem(), "", func(key string, v reflect.Value) {
		name := EnvName(key)
		targets[name] = target{key, v}
		names = append(names, name)
	})
	var errs []error
	fail := func(name, key string, err error) {
		errs = append(errs, &Error{File: c.src.file, Env: name, Key: key, Err: err})
	}
	seen := map[string]bool{}
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || name == ConfigEnv {
			continue
		}
		if seen[name] {
			fail(name, "", errors.New("set twice in the environment"))
			continue
		}
		seen[name] = true
		t, ok := targets[name]
		if !ok {
			if m := envDeviceIndex.FindStringSubmatch(name); m != nil {
				if i, err := strconv.Atoi(m[1]); err != nil || i >= len(c.Devices) {
					fail(name, "", fmt.Errorf("the config file has no devices[%s]: the environment can change a device's settings, not add a device", m[1]))
					continue
				}
			}
			fail(name, "", fmt.Errorf("unknown variable%s", yamlnode.DidYouMean(name, names, false)))
			continue
		}
		if err := setScalar(t.v, value); err != nil {
			fail(name, t.key, err)
			continue
		}
		c.src.set(t.key, origin{env: name})
	}
	return errors.Join(errs...)
}
