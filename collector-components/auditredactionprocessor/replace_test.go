package auditredactionprocessor

import (
	"math/rand/v2"
	"regexp"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// shippedReplacements are the replace_patterns of the shipped configurations.
func shippedReplacements(t testing.TB) []ReplacePattern {
	t.Helper()
	var out []ReplacePattern
	for _, c := range shippedConfigs(t) {
		var cfg Config
		unmarshal(t, c.raw, &cfg)
		out = append(out, cfg.ReplacePatterns...)
	}
	return out
}

// ottlReplacePattern is OTTL's replace_pattern (pkg/ottl v0.145.0, without its optional
// function): a value that matches is replaced by ReplaceAllString.
func ottlReplacePattern(re *regexp.Regexp, template, value string) string {
	if re.MatchString(value) {
		return re.ReplaceAllString(value, template)
	}
	return value
}

// TestReplacePatternsAsOTTL compares each shipped replace_patterns entry, prefilter and
// run-by-run replacement included, with OTTL's replace_pattern on the fold partners,
// invalid UTF-8, random strings and query strings with secret-named parameters.
func TestReplacePatternsAsOTTL(t *testing.T) {
	cfgs := shippedReplacements(t)
	if len(cfgs) == 0 {
		t.Fatal("no replace_patterns in the shipped configurations")
	}
	rps, err := compileReplacements(cfgs)
	if err != nil {
		t.Fatal(err)
	}
	values := append([]string{
		"page=2&token=abc", "a=1&AUTH_code=zz&y=2", "sig=[REDACTED:secret_key]", "x=1&to\u212aen=1",
		"\u017fecret=1", "?session=1&password=&x", "https://h/p?sig=abc&b=2", "token=", "&&token==x",
	}, foldingAndInvalid...)
	rng := rand.New(rand.NewPCG(11, 13))
	for range 5000 {
		values = append(values, randomValue(rng)+"="+randomValue(rng))
	}
	var f features
	changed := 0
	for i := range rps {
		rp := &rps[i]
		for _, v := range values {
			want := ottlReplacePattern(rp.pat.re, rp.template, v)
			if got := rp.replaceIn(v, &f); got != want {
				t.Fatalf("%q on %q: %q, OTTL's replace_pattern gives %q", rp.pat.source, v, got, want)
			}
			if want != v {
				changed++
			}
		}
	}
	if changed == 0 {
		t.Fatal("no value was changed: the comparison says nothing")
	}
}

// TestReplacePatternsWhereAndMarker checks where the replacements apply (log records,
// spans, span events; not resources) and that the marker follows a change only.
func TestReplacePatternsWhereAndMarker(t *testing.T) {
	r, err := newRedactor(&Config{AllowAllKeys: true, ReplacePatterns: []ReplacePattern{{
		Keys: []string{"q", "q2"}, Pattern: `(token=)[^&]*`, Replacement: "${1}X", Marker: "m",
	}}})
	if err != nil {
		t.Fatal(err)
	}
	logs := plog.NewLogs()
	rl := logs.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("q", "token=1")
	records := rl.ScopeLogs().AppendEmpty().LogRecords()
	records.AppendEmpty().Attributes().PutStr("q", "a=1&token=2")
	records.AppendEmpty().Attributes().PutStr("q", "a=1")
	records.AppendEmpty().Attributes().PutInt("q", 7)
	third := records.AppendEmpty().Attributes()
	third.PutStr("q", "token=X")
	third.PutStr("q2", "token=3")
	if _, err := r.processLogs(t.Context(), logs); err != nil {
		t.Fatal(err)
	}
	expect := func(m pcommon.Map, key, want string, marked bool) {
		t.Helper()
		v, _ := m.Get(key)
		_, hasMarker := m.Get("m")
		if v.AsString() != want || hasMarker != marked {
			t.Errorf("%s = %q (marker %v), want %q (marker %v)", key, v.AsString(), hasMarker, want, marked)
		}
	}
	expect(rl.Resource().Attributes(), "q", "token=1", false)
	expect(records.At(0).Attributes(), "q", "a=1&token=X", true)
	expect(records.At(1).Attributes(), "q", "a=1", false)
	expect(records.At(2).Attributes(), "q", "7", false)
	expect(third, "q", "token=X", true) // unchanged itself, but q2 changed
	expect(third, "q2", "token=X", true)

	traces := ptrace.NewTraces()
	span := traces.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.Attributes().PutStr("q", "token=4")
	span.Events().AppendEmpty().Attributes().PutStr("q", "token=5")
	if _, err := r.processTraces(t.Context(), traces); err != nil {
		t.Fatal(err)
	}
	expect(span.Attributes(), "q", "token=X", true)
	expect(span.Events().At(0).Attributes(), "q", "token=X", true)
}
