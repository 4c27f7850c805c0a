package auditredactionprocessor

// Equivalence with the contrib redaction processor v0.145.0 on the PII corpus, the
// benchmark batches, random strings, invalid UTF-8 and Unicode case-folding partners,
// for every audit_redaction processor in collector-config/*.yaml.

import (
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// testdataEnv names the folder tests/test_audit_redaction_processor.py fills with the
// Python side's data: the PII corpus (tests/pii_corpus.py, in the forms the e2e test
// sends it) and the benchmark's export requests (bench/audit_payload.py).
const testdataEnv = "AUDIT_REDACTION_TESTDATA"

func pythonTestdata(t *testing.T, name string) []byte {
	t.Helper()
	dir := os.Getenv(testdataEnv)
	if dir == "" {
		t.Skipf("%s is not set: tests/test_audit_redaction_processor.py runs this test with the Python side's data", testdataEnv)
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The keys a value is put under: scanned in every shipped config (allowed, not ignored),
// ignored in the audit config, unknown (removed by an allow-list), and secret-named
// (masked whole where blocked_key_patterns are set).
var valueKeys = []string{"url.query", "audit.details", "user_agent.original", "user.id", "x.custom", "password"}

// valueLogs puts each value in a record's attributes and body (a string body for even
// records, a nested map with a slice for odd ones).
func valueLogs(values []string) plog.Logs {
	logs := plog.NewLogs()
	rl := logs.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "equivalence")
	records := rl.ScopeLogs().AppendEmpty().LogRecords()
	for i, v := range values {
		r := records.AppendEmpty()
		r.SetEventName("audit.http.request")
		for _, k := range valueKeys {
			r.Attributes().PutStr(k, v)
		}
		r.Attributes().PutInt("http.response.status_code", 200)
		if i%2 == 0 {
			r.Body().SetStr(v)
			continue
		}
		body := r.Body().SetEmptyMap()
		body.PutStr("note", v)
		body.PutStr("api_key", v)
		nested := body.PutEmptyMap("details")
		list := nested.PutEmptySlice("list")
		list.AppendEmpty().SetStr(v)
		list.AppendEmpty().SetInt(4111111111111111)
		nested.PutStr("secret", v)
	}
	return logs
}

// valueTraces puts each value in a span's attributes and in its audit span event.
func valueTraces(values []string) ptrace.Traces {
	traces := ptrace.NewTraces()
	rs := traces.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "equivalence")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for _, v := range values {
		span := spans.AppendEmpty()
		span.SetName("POST /pii/{value}")
		event := span.Events().AppendEmpty()
		event.SetName("audit.http.request")
		for _, k := range valueKeys {
			span.Attributes().PutStr(k, v)
			event.Attributes().PutStr(k, v)
		}
	}
	return traces
}

// checkValues compares both processors on values, in batches, for every shipped config,
// and returns how many string leaves were compared.
func checkValues(t *testing.T, values []string) int {
	t.Helper()
	compared := 0
	for _, p := range shippedPairs(t) {
		ties := 0
		for start := 0; start < len(values); start += 400 {
			batch := values[start:min(start+400, len(values))]
			for _, d := range []*diff{p.compareLogs(t, valueLogs(batch)), p.compareTraces(t, valueTraces(batch))} {
				d.report(t)
				compared += d.comparedAt
				ties += d.orderTies
			}
		}
		t.Logf("%s: %d values; %d strings where the contrib processor's pattern order decided its output",
			p.name, len(values), ties)
	}
	if compared == 0 {
		t.Fatal("nothing was compared")
	}
	return compared
}

type corpusFile struct {
	Values    []string `json:"values"`    // every sample in every form the e2e test sends
	Negatives []string `json:"negatives"` // look-alikes the library must keep
}

func TestEquivalencePIICorpus(t *testing.T) {
	var corpus corpusFile
	if err := json.Unmarshal(pythonTestdata(t, "pii_corpus.json"), &corpus); err != nil {
		t.Fatal(err)
	}
	if len(corpus.Values) < 30 {
		t.Fatalf("the corpus has %d values", len(corpus.Values))
	}
	n := checkValues(t, append(corpus.Values, corpus.Negatives...))
	t.Logf("%d corpus values, %d string leaves compared", len(corpus.Values)+len(corpus.Negatives), n)
}

func TestEquivalenceBenchBatches(t *testing.T) {
	for _, name := range []string{"audit_logs.binpb", "default_logs.binpb"} {
		req := plogotlp.NewExportRequest()
		if err := req.UnmarshalProto(pythonTestdata(t, name)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if req.Logs().LogRecordCount() == 0 {
			t.Fatalf("%s has no records", name)
		}
		for _, p := range shippedPairs(t) {
			d := p.compareLogs(t, req.Logs())
			d.report(t)
			t.Logf("%s on %s: %d records, %d string leaves", p.name, name, req.Logs().LogRecordCount(), d.comparedAt)
		}
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(pythonTestdata(t, "traces.binpb")); err != nil {
		t.Fatal(err)
	}
	if req.Traces().SpanCount() == 0 {
		t.Fatal("traces.binpb has no spans")
	}
	for _, p := range shippedPairs(t) {
		d := p.compareTraces(t, req.Traces())
		d.report(t)
		t.Logf("%s on traces.binpb: %d spans, %d string leaves", p.name, req.Traces().SpanCount(), d.comparedAt)
	}
}

// Fragments random strings are made of: pieces of what the patterns look for, the
// separators between them, case-folding partners, and bytes that are not UTF-8.
var fragments = []string{
	"@", "%40", ".", ".com", ".co.uk", "jane.doe", "a", "Z", "_", "-", "+", "%2B", "%20", " ",
	"(", ")", "%28", "%29", "=", ":", "%3a", "%3D", "\"", "'", "&", ";", ",", "{", "}", "[", "]",
	"\t", "\n", "1", "4111", "1111", "555", "0143", "202", "12", "123", "-45-", "6789",
	"eyJ", "eyJhbGciOiJIUzI1NiJ9", "abcDEF_-x", "Bearer", "BASIC", "bearer ", "Basic\t",
	"AKIA", "ASIA", "IOSFODNN7EXAMPLE", "AIza", "ghp_", "github_pat_", "sk_live_", "rk_test_",
	"xoxb-", "password", "passwd", "PassPhrase", "secret", "TOKEN", "api_key", "api-key",
	"apikey", "session_id", "sessionid", "cvv", "CVC", "GB82", "WEST", "DE89", "3704",
	"\u212a", "\u017f", "\u0130", "\u0131", "\u00e9", "\u2028", "\ufffd",
	"\xff", "\xfe", "\xc3", "\xe2\x84", "\xf0\x9f", "\x80", "\xed\xa0\x80",
}

var separators = []string{"", "-", "-", ".", " ", "%20", "+", "(", ")", "%28", "%29", "1-", "+1 ", "GB", "\u212a"}

func randomValue(rng *rand.Rand) string {
	var b strings.Builder
	for n := rng.IntN(12) + 1; n > 0; n-- {
		switch rng.IntN(12) {
		case 0:
			for d := rng.IntN(20); d > 0; d-- {
				b.WriteByte(byte('0' + rng.IntN(10)))
			}
		case 1:
			b.WriteByte(byte(rng.IntN(256)))
		case 2: // groups of digits between separators: phone, SSN, card and IBAN shapes
			for g := rng.IntN(6) + 1; g > 0; g-- {
				b.WriteString(separators[rng.IntN(len(separators))])
				for d := rng.IntN(6) + 1; d > 0; d-- {
					b.WriteByte(byte('0' + rng.IntN(10)))
				}
			}
		default:
			b.WriteString(fragments[rng.IntN(len(fragments))])
		}
	}
	return b.String()
}

// randomValues sets how many random strings TestEquivalenceRandomStrings compares; the
// contrib processor is the slow side (go test -run RandomStrings -args -random-values=300000).
var randomValues = flag.Int("random-values", 4_000, "random strings compared with the contrib processor")

func TestEquivalenceRandomStrings(t *testing.T) {
	count := *randomValues
	if testing.Short() {
		count = min(count, 1_000)
	}
	rng := rand.New(rand.NewPCG(20261130, 9))
	values := make([]string, count)
	for i := range values {
		values[i] = randomValue(rng)
	}
	checkValues(t, values)
}

// The regexp engine folds case along unicode.SimpleFold orbits: under (?i) "k" also
// matches U+212A KELVIN SIGN and "s" U+017F LATIN SMALL LETTER LONG S. A prefilter that
// lower-cased ASCII would miss these; invalid UTF-8 is read as U+FFFD, one byte each.
var foldingAndInvalid = []string{
	"to\u212aen=abc123", "TO\u212aEN: \"zzz\"", "\u017fecret=hunter2", "pa\u017f\u017fword=x",
	"PA\u017fSWORD%3Dabc", "api_\u212aey=Zk93Lq7Wm2Xr5Tp1", "coo\u212aie", "ba\u017fic YWxpY2U6czNjcjN0",
	"BEARER 9f8e7d6c5b4a39281706", "be\u0041rer abcdefghijklmnop", "\u017f\u017fn 536-22-8471",
	"token=\xff\xfe", "\xffjane.doe@example.com", "jane\xff@example.com", "4111\xff1111 1111 1111",
	"4111 1111 1111 1111\xff", "\xc3\x28token=abc", "eyJ\xffabcdefgh.abcd.ef", "+1\xff202 555 0143",
	"session\u0130d=abc", "sess\u0131onid=abc", "\ufffd\ufffd@\ufffd.com", "x@y.\u212aom",
	"GB82 WEST 1234 5698 7654 32\xe2\x84", "password=\u212a\u017f", "secret=[REDACTED:secret_key]",
	"+1 4111 1111 1111 1111", "card 4111-1111-1111-1111 tel +44 20 7946 0958",
}

func TestEquivalenceFoldingAndInvalidUTF8(t *testing.T) {
	checkValues(t, foldingAndInvalid)
}

// TestContribOrderDecidesOverlaps documents why the comparison allows for order: a value
// where two patterns overlap comes out of the contrib processor in more than one way,
// while this processor always gives the configured order's result.
func TestContribOrderDecidesOverlaps(t *testing.T) {
	p := newPair(t, "audit", shippedConfigs(t)[0].raw)
	const value = "+1 4111 1111 1111 1111"
	want := p.inConfiguredOrder(value)
	if !p.inSomeOrder(value, "****") || !p.inSomeOrder(value, "+1 ****") {
		t.Fatalf("expected both the phone-first and the card-first result to be possible for %q", value)
	}
	var f features
	r, err := newRedactor(p.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.masker.maskBlocked(r.blockedValues, value, &f); got != want {
		t.Fatalf("%q -> %q, want the configured order's %q", value, got, want)
	}
}

// TestEquivalenceEveryRule covers the configuration surface beyond the shipped files:
// allowed values, ignored key patterns, a hash function, every type scanned, and the
// debug summary with its key lists, on maps and slices in bodies.
func TestEquivalenceEveryRule(t *testing.T) {
	configs := []map[string]any{
		{
			"allowed_keys":         []any{"note", "card", "list", "nested", "n", "secret_note", "empty", "b"},
			"ignored_key_patterns": []any{"^ign\\."},
			"ignored_keys":         []any{"skip"},
			"blocked_key_patterns": []any{"(?i)secret"},
			"blocked_values":       []any{"\\d{4}[ -]?\\d{4}[ -]?\\d{4}[ -]?\\d{4}", "(?i)token=\\S+", "x*"},
			"allowed_values":       []any{"^keep", "@allowed\\.example$"},
			"summary":              "debug",
		},
		{
			"allow_all_keys":       true,
			"blocked_key_patterns": []any{".*pass.*"},
			"blocked_values":       []any{"[a-z]+@[a-z]+\\.com", "\\d{3}-\\d{2}-\\d{4}"},
			"hash_function":        "SHA3",
			"redact_all_types":     true,
			"summary":              "info",
		},
		{
			"allow_all_keys": true,
			"blocked_values": []any{"(?s).+"},
			"hash_function":  "md5",
			"summary":        "debug",
		},
	}
	values := append([]string{"", "keep 4111 1111 1111 1111", "a@b.com and 123-45-6789", "mail me@allowed.example",
		"token=abc \u212a", "4111111111111111", "multi\nline 4111-1111-1111-1111\n"}, foldingAndInvalid...)
	for i, raw := range configs {
		p := newPair(t, "rule set "+string(rune('A'+i)), raw)
		logs := valueLogs(values)
		// Keys each rule set treats differently, and non-string values.
		for j := 0; j < logs.LogRecordCount(); j++ {
			r := logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(j)
			r.Attributes().PutStr("ign.x", values[j])
			r.Attributes().PutStr("skip", values[j])
			r.Attributes().PutStr("secret_note", values[j])
			r.Attributes().PutStr("a_password", values[j])
			r.Attributes().PutInt("card", 4111111111111111)
			r.Attributes().PutDouble("n", 123456789.5)
			r.Attributes().PutEmptySlice("list").AppendEmpty().SetStr(values[j])
			r.Attributes().PutInt(keyMaskedCount, 2) // left by an earlier collector
			if j == 3 {
				r.Body().SetEmptySlice().AppendEmpty().SetEmptyMap().PutStr("note", values[j])
			}
			if j == 5 {
				r.Body().SetEmptyBytes().FromRaw([]byte("4111 1111 1111 1111"))
			}
		}
		d := p.compareLogs(t, logs)
		d.report(t)
		d = p.compareTraces(t, valueTraces(values))
		d.report(t)
	}
}
