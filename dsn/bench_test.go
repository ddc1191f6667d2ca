package dsn

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkBuild measures building a failure report, as the scheduler does
// for every bounced message: one recipient and the headers only (the
// default), the full original of 2 KB and 50 KB (RET=FULL), and a 1 MiB
// original cut to DefaultMaxReturnBytes. A parse of the result is timed
// separately (BenchmarkParse), since inbound bounces are parsed, not built.
func BenchmarkBuild(b *testing.B) {
	cases := []struct {
		name      string
		bodyBytes int
		ret       string
		rcpts     int
	}{
		{name: "headers/2KiB", bodyBytes: 2 << 10, ret: ReturnHeaders, rcpts: 1},
		{name: "full/2KiB", bodyBytes: 2 << 10, ret: ReturnFull, rcpts: 1},
		{name: "full/50KiB", bodyBytes: 50 << 10, ret: ReturnFull, rcpts: 1},
		{name: "full/1MiB-truncated", bodyBytes: 1 << 20, ret: ReturnFull, rcpts: 1},
		{name: "headers/2KiB/10rcpts", bodyBytes: 2 << 10, ret: ReturnHeaders, rcpts: 10},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			r := benchReport(tc.bodyBytes, tc.ret, tc.rcpts)
			b.ReportAllocs()
			var size int
			for b.Loop() {
				out, err := Build(r)
				if err != nil {
					b.Fatal(err)
				}
				size = len(out)
			}
			b.ReportMetric(float64(size), "report-bytes")
		})
	}
}

// BenchmarkParse measures reading a report back, as the VERP intake does
// for every inbound bounce.
func BenchmarkParse(b *testing.B) {
	msg, err := Build(benchReport(2<<10, ReturnHeaders, 1))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := Parse(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// benchReport is newTestReport with an original of bodyBytes and rcpts
// failed recipients.
func benchReport(bodyBytes int, ret string, rcpts int) *Report {
	r := newTestReport()
	line := []byte("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n")
	body := append([]byte(testOriginal), bytes.Repeat(line, bodyBytes/len(line))...)
	r.Original = body
	r.Return = ret
	base := r.Recipients[0]
	r.Recipients = r.Recipients[:0]
	for i := range rcpts {
		rc := base
		rc.FinalRecipient = fmt.Sprintf("user%d@bigmail.example", i)
		r.Recipients = append(r.Recipients, rc)
	}
	return r
}
