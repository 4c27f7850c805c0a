package auditredactionprocessor

import (
	"strings"
	"testing"

	"go.opentelemetry.io/collector/confmap"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  map[string]any
		err  string // "" when valid
	}{
		{"empty fails closed but is valid", map[string]any{}, ""},
		{"shared keys", map[string]any{
			"allow_all_keys": true, "allowed_keys": []any{"a"}, "ignored_keys": []any{"b"},
			"ignored_key_patterns": []any{"^c"}, "blocked_key_patterns": []any{"d"},
			"blocked_values": []any{"e@f"}, "allowed_values": []any{"g"}, "hash_function": "SHA1",
			"redact_all_types": true, "summary": "debug",
		}, ""},
		{"bad blocked value", map[string]any{"blocked_values": []any{"(unclosed"}}, "error compiling regex"},
		{"bad key pattern", map[string]any{"blocked_key_patterns": []any{"[z-a]"}}, "blocked_key_patterns"},
		{"bad summary", map[string]any{"summary": "verbose"}, `summary "verbose"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			if err := confmap.NewFromStringMap(tc.raw).Unmarshal(cfg); err != nil {
				t.Fatal(err)
			}
			err := cfg.Validate()
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}

// Keys of the contrib processor that this one does not implement are refused, not ignored.
func TestConfigRefusesWhatItCannotDo(t *testing.T) {
	for _, key := range []string{"url_sanitizer", "db_sanitizer", "hmac_key"} {
		cfg := createDefaultConfig().(*Config)
		err := confmap.NewFromStringMap(map[string]any{key: map[string]any{"enabled": true}}).Unmarshal(cfg)
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: error %v, want it refused by name", key, err)
		}
	}
	cfg := createDefaultConfig().(*Config)
	err := confmap.NewFromStringMap(map[string]any{"hash_function": "sha256"}).Unmarshal(cfg)
	if err == nil || !strings.Contains(err.Error(), "unknown hash_function") {
		t.Errorf("hash_function sha256: error %v", err)
	}
}
