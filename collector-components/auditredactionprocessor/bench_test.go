package auditredactionprocessor

import (
	"os"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
)

// BenchmarkAuditBatch processes the pipeline benchmark's audit batch (500 records, written
// by tests/test_audit_redaction_processor.py's write_testdata) with each shipped config, in
// both processors, to see where the time goes without a collector around them:
//
//	AUDIT_REDACTION_TESTDATA=<folder> go test -run '^$' -bench AuditBatch -cpuprofile cpu.out
//
// The collector-level figures are bench/pipeline.py's (make bench ARGS="--only pipeline").
func BenchmarkAuditBatch(b *testing.B) {
	dir := os.Getenv(testdataEnv)
	if dir == "" {
		b.Skipf("%s is not set", testdataEnv)
	}
	data, err := os.ReadFile(filepath.Join(dir, "audit_logs.binpb"))
	if err != nil {
		b.Fatal(err)
	}
	req := plogotlp.NewExportRequest()
	if err := req.UnmarshalProto(data); err != nil {
		b.Fatal(err)
	}
	for _, c := range shippedConfigs(b) {
		p := newPair(b, c.String(), c.raw)
		for _, side := range []struct {
			name string
			run  func(plog.Logs) plog.Logs
		}{{"audit_redaction", p.mine.logs}, {"contrib", p.contrib.logs}} {
			b.Run(c.name+"/"+side.name, func(b *testing.B) {
				batch := plog.NewLogs()
				for b.Loop() {
					b.StopTimer()
					req.Logs().CopyTo(batch)
					b.StartTimer()
					side.run(batch)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch.LogRecordCount()), "ns/record")
			})
		}
	}
}
