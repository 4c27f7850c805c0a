// Package auditredactionprocessor is otel-audit's PII redaction processor for the
// OpenTelemetry Collector (type audit_redaction).
//
// It has the configuration keys of the contrib redaction processor (v0.145.0) that it
// shares with it (allow_all_keys, allowed_keys, ignored_keys, ignored_key_patterns,
// blocked_key_patterns, blocked_values, allowed_values, hash_function, redact_all_types,
// summary), gives the same output for them, and writes the same summary attributes. It
// differs in how it gets there: every pattern carries a prefilter derived from its syntax
// tree (prefilter.go), checked against one scan of each value (scan.go), so the regex
// engine runs only on values that could match; and a pattern that may match replaces in
// one pass instead of matching first. Patterns apply in configuration order (the contrib
// processor keeps them in a map, so its order, and its output where two patterns
// overlap, changes from one batch to the next).
package auditredactionprocessor // import "github.com/otel-audit/otelcol-audit/collector-components/auditredactionprocessor"
