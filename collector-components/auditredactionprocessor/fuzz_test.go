package auditredactionprocessor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzEquivalence feeds arbitrary strings (any bytes, so invalid UTF-8 too) to both
// processors under every shipped configuration, in attributes, bodies, spans and span
// events, and checks every prefilter against its regex on the way. CI runs it with a
// bounded -fuzztime (tests/test_audit_redaction_processor.py); without -fuzz, `go test`
// runs the seeds below and any failure saved under testdata/fuzz/.
func FuzzEquivalence(f *testing.F) {
	for _, v := range append(append([]string{}, foldingAndInvalid...), fragments...) {
		f.Add(v)
	}
	if dir := os.Getenv(testdataEnv); dir != "" {
		var corpus corpusFile
		data, err := os.ReadFile(filepath.Join(dir, "pii_corpus.json"))
		if err == nil {
			err = json.Unmarshal(data, &corpus)
		}
		if err != nil {
			f.Fatal(err)
		}
		for _, v := range append(corpus.Values, corpus.Negatives...) {
			f.Add(v)
		}
	}
	pairs := shippedPairs(f)
	redactors := make([]*redactor, len(pairs))
	for i, p := range pairs {
		r, err := newRedactor(p.cfg)
		if err != nil {
			f.Fatal(err)
		}
		redactors[i] = r
	}
	f.Fuzz(func(t *testing.T, value string) {
		var feats features
		for i, p := range pairs {
			r := redactors[i]
			for _, lists := range [][]*pattern{r.blockedValues, r.blockedKeys, r.ignoredKeys, r.allowedValues} {
				for _, pat := range lists {
					feats.scan(value)
					if !pat.pre.mayMatch(&feats) && pat.re.MatchString(value) {
						t.Fatalf("the prefilter %s of %q rejects %q, which the regex matches", pat.pre, pat.source, value)
					}
				}
			}
			p.compareLogs(t, valueLogs([]string{value, value})).report(t)
			p.compareTraces(t, valueTraces([]string{value})).report(t)
		}
	})
}
