package auditredactionprocessor

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Config has the same keys, with the same meanings, as the contrib redaction processor's
// (processor/redactionprocessor at v0.145.0) for everything the two share, so a
// `redaction/<name>:` block can be renamed `audit_redaction/<name>:` unchanged. The
// contrib processor's URL and database sanitizers are not offered: a config naming them
// is refused as having unknown keys rather than silently doing less.
type Config struct {
	// AllowAllKeys keeps every attribute key; allowed_keys is then not consulted. The
	// blocked_values patterns apply either way.
	AllowAllKeys bool `mapstructure:"allow_all_keys"`

	// AllowedKeys are the attribute keys that survive; any other key is removed. The list
	// fails closed: empty (with allow_all_keys false) removes every attribute. The
	// processor's own summary keys (redaction.*.count, ...) are always allowed.
	AllowedKeys []string `mapstructure:"allowed_keys"`

	// IgnoredKeys pass through untouched: not removed, not masked, their values not scanned.
	IgnoredKeys []string `mapstructure:"ignored_keys"`

	// IgnoredKeyPatterns are regular expressions (RE2 syntax, unanchored) for keys to
	// treat as ignored_keys.
	IgnoredKeyPatterns []string `mapstructure:"ignored_key_patterns"`

	// BlockedKeyPatterns are regular expressions for keys whose whole value is masked,
	// whatever it holds.
	BlockedKeyPatterns []string `mapstructure:"blocked_key_patterns"`

	// BlockedValues are regular expressions; every match inside a scanned value is masked.
	// They are applied one after the other in the order listed, each to the result of the
	// one before. Each pattern gets a prefilter derived from it (a necessary condition
	// checked on one scan of the value), so most values never reach the regex engine.
	BlockedValues []string `mapstructure:"blocked_values"`

	// AllowedValues are regular expressions; a value matching any of them is left as it
	// is (and counted in the summary as allowed).
	AllowedValues []string `mapstructure:"allowed_values"`

	// HashFunction replaces each match with the hex digest of the matched text instead of
	// "****": sha1, sha3 (SHA3-256) or md5. Unkeyed, so guessable for short values: it is
	// there for compatibility with the contrib processor, not as pseudonymisation.
	HashFunction HashFunction `mapstructure:"hash_function"`

	// RedactAllTypes scans non-string attribute values through their string form (and
	// stores a masked one as a string). By default a non-string value is scanned as "".
	RedactAllTypes bool `mapstructure:"redact_all_types"`

	// Summary adds counts of what was removed, masked, allowed and ignored as attributes
	// of the changed item: "info" (counts), "debug" (counts and the keys), "silent" or
	// empty (nothing). The attribute names are the contrib processor's (redaction.*).
	Summary string `mapstructure:"summary"`

	// ReplacePatterns is audit_redaction's own (the contrib processor has no such key):
	// regex replacements in named attributes of log records, spans and span events, with
	// OTTL replace_pattern's meaning, applied after everything above. Each pattern gets a
	// prefilter like blocked_values, which an OTTL statement in a transform processor
	// cannot have: that is the reason to do it here.
	ReplacePatterns []ReplacePattern `mapstructure:"replace_patterns"`
}

// ReplacePattern replaces every match of Pattern in the string values of Keys.
type ReplacePattern struct {
	// Keys are the attribute keys whose values are searched (exact names).
	Keys []string `mapstructure:"keys"`
	// Pattern is a regular expression (RE2 syntax, unanchored).
	Pattern string `mapstructure:"pattern"`
	// Replacement is a template: $1 or ${1} for a group (regexp.Expand). In collector
	// YAML write $$1, since a single $ starts an environment reference there.
	Replacement string `mapstructure:"replacement"`
	// Marker, when set, is the attribute set to true on the record, span or span event
	// whose value was changed (the archive verifier reads it as "changed by the collector").
	Marker string `mapstructure:"marker"`
}

// HashFunction names a digest for masking matches; empty means the fixed mask "****".
type HashFunction string

const (
	hashNone HashFunction = ""
	hashSHA1 HashFunction = "sha1"
	hashSHA3 HashFunction = "sha3"
	hashMD5  HashFunction = "md5"
)

// UnmarshalText accepts the names in any case, as the contrib processor does.
func (h *HashFunction) UnmarshalText(text []byte) error {
	switch name := HashFunction(strings.ToLower(string(text))); name {
	case hashNone, hashSHA1, hashSHA3, hashMD5:
		*h = name
		return nil
	default:
		return fmt.Errorf("unknown hash_function %q: use sha1, sha3 or md5, or leave it empty to mask with ****", string(text))
	}
}

const (
	summaryDebug  = "debug"
	summaryInfo   = "info"
	summarySilent = "silent"
)

// Validate refuses what would fail later or silently do something else: a pattern that
// does not compile, an unknown summary level.
func (c *Config) Validate() error {
	var errs []error
	for _, list := range []struct {
		name     string
		patterns []string
	}{
		{"ignored_key_patterns", c.IgnoredKeyPatterns},
		{"blocked_key_patterns", c.BlockedKeyPatterns},
		{"blocked_values", c.BlockedValues},
		{"allowed_values", c.AllowedValues},
	} {
		for _, pattern := range list.patterns {
			if _, err := regexp.Compile(pattern); err != nil {
				errs = append(errs, fmt.Errorf("%s: error compiling regex %q: %w", list.name, pattern, err))
			}
		}
	}
	for i, rp := range c.ReplacePatterns {
		if len(rp.Keys) == 0 {
			errs = append(errs, fmt.Errorf("replace_patterns[%d]: no keys", i))
		}
		if _, err := regexp.Compile(rp.Pattern); err != nil {
			errs = append(errs, fmt.Errorf("replace_patterns[%d]: error compiling regex %q: %w", i, rp.Pattern, err))
		}
	}
	switch c.Summary {
	case "", summarySilent, summaryInfo, summaryDebug:
	default:
		errs = append(errs, fmt.Errorf("summary %q: use info, debug or silent", c.Summary))
	}
	return errors.Join(errs...)
}
