package auditredactionprocessor

import (
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// replacement is one compiled replace_patterns entry.
type replacement struct {
	keys     []string
	pat      *pattern
	template string
	marker   string
}

func compileReplacements(cfg []ReplacePattern) ([]replacement, error) {
	out := make([]replacement, 0, len(cfg))
	for i, rp := range cfg {
		pats, err := compilePatterns([]string{rp.Pattern})
		if err != nil {
			return nil, fmt.Errorf("replace_patterns[%d]: %w", i, err)
		}
		out = append(out, replacement{keys: rp.Keys, pat: pats[0], template: rp.Replacement, marker: rp.Marker})
	}
	return out, nil
}

// replaceIn is OTTL's replace_pattern on one value: every match replaced by the template.
func (rp *replacement) replaceIn(value string, f *features) string {
	f.scan(value)
	if !rp.pat.mayMatch(f) {
		return value
	}
	whole := func(s string) string { return rp.pat.re.ReplaceAllString(s, rp.template) }
	if rp.pat.narrow == nil {
		return whole(value)
	}
	return rp.pat.narrow.replaceRuns(value, whole)
}

// applyReplacements runs the replace_patterns on the string values of their keys in
// one attribute map (of a log record, span or span event), then sets their markers.
func (r *redactor) applyReplacements(attrs pcommon.Map, f *features) {
	for i := range r.replacements {
		rp := &r.replacements[i]
		changed := false
		for _, k := range rp.keys {
			v, ok := attrs.Get(k)
			if !ok || v.Type() != pcommon.ValueTypeStr {
				continue
			}
			if replaced := rp.replaceIn(v.Str(), f); replaced != v.Str() {
				v.SetStr(replaced)
				changed = true
			}
		}
		if changed && rp.marker != "" {
			attrs.PutBool(rp.marker, true)
		}
	}
}
