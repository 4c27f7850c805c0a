package auditredactionprocessor

import (
	"slices"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// FuzzEquivalence feeds arbitrary strings (any bytes, so invalid UTF-8 too) to both
// processors under every shipped configuration, in attributes (scanned, secret-named,
// unknown), log bodies and span events, checks every prefilter against its regex, and
// each replace_patterns entry against OTTL's replace_pattern on the way. CI runs it with a bounded -fuzztime (tests/test_audit_redaction_processor.py);
// without -fuzz, `go test` runs the seeds below and any failure saved under testdata/fuzz/.
// The seeds are short on purpose: the fuzzing engine replays them all before it mutates,
// and the PII corpus has its own test (TestEquivalencePIICorpus).
func FuzzEquivalence(f *testing.F) {
	for _, v := range append(append([]string{}, foldingAndInvalid...), fragments...) {
		f.Add(v)
	}
	pairs := shippedPairs(f)
	var patterns []*pattern
	seen := map[string]bool{}
	for _, p := range pairs {
		r, err := newRedactor(p.cfg)
		if err != nil {
			f.Fatal(err)
		}
		for _, pat := range slices.Concat(r.blockedValues, r.blockedKeys, r.ignoredKeys, r.allowedValues) {
			if !seen[pat.source] {
				seen[pat.source] = true
				patterns = append(patterns, pat)
			}
		}
	}
	replacements, err := compileReplacements(shippedReplacements(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, value string) {
		var feats features
		feats.scan(value)
		for _, pat := range patterns {
			if !pat.mayMatch(&feats) && pat.re.MatchString(value) {
				t.Fatalf("the prefilter %s of %q rejects %q, which the regex matches", pat.pre, pat.source, value)
			}
		}
		for i := range replacements {
			rp := &replacements[i]
			if got, want := rp.replaceIn(value, &feats), ottlReplacePattern(rp.pat.re, rp.template, value); got != want {
				t.Fatalf("replace_patterns %q on %q: %q, OTTL's replace_pattern gives %q", rp.pat.source, value, got, want)
			}
		}
		logs := plog.NewLogs()
		record := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		for _, k := range []string{"url.query", "password", "x.custom"} {
			record.Attributes().PutStr(k, value)
		}
		record.Body().SetStr(value)
		traces := ptrace.NewTraces()
		event := traces.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().Events().AppendEmpty()
		event.Attributes().PutStr("audit.details", value)
		for _, p := range pairs {
			p.compareLogs(t, logs).report(t)
			p.compareTraces(t, traces).report(t)
		}
	})
}
