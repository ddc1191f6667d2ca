package redisbudget

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzNew feeds arbitrary URLs to New: it must never panic, must wrap
// ErrBadURL (or reject a negative setting), and must never repeat the
// URL's password in an error.
func FuzzNew(f *testing.F) {
	for _, s := range []string{
		"redis://127.0.0.1:6379/0",
		"rediss://user:secretpw@redis.example:6380/1?dial_timeout=3s",
		"unix:///run/redis.sock?db=1",
		"redis-sentinel://:sentinelpw@10.0.0.1:26379/0?master_name=m&addr=10.0.0.2:26379&password=masterpw",
		"rediss-cluster://u:clusterpw@10.0.0.1:7000?addr=10.0.0.2:7000",
		"redis://u:pw@host:port:bad/%zz",
		"http://x",
		"",
		"redis://[::1]:6379/0",
		"redis-sentinel://h?master_name=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		s, err := New(Options{URL: raw, Timeout: time.Millisecond})
		if err == nil {
			_ = s.Close()
			return
		}
		if !errors.Is(err, ErrBadURL) {
			t.Fatalf("New(%q) error %v does not wrap ErrBadURL", raw, err)
		}
		if pw := urlPassword(raw); pw != "" && strings.Contains(err.Error(), pw) {
			t.Fatalf("New(%q) error repeats the password %q: %v", raw, pw, err)
		}
	})
}

// urlPassword returns the password of raw when it is long enough, and not
// also written elsewhere in the URL, for a substring check to mean
// something.
func urlPassword(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		// An unparsable URL's password is whatever sits between "//" and
		// "@"; the error must not repeat that span either.
		at, slashes := strings.LastIndexByte(raw, '@'), strings.Index(raw, "//")
		if at < 0 || slashes < 0 || at < slashes+2 {
			return ""
		}
		info := raw[slashes+2 : at]
		if i := strings.IndexByte(info, ':'); i >= 0 && len(info)-i > 8 {
			return info[i+1:]
		}
		return ""
	}
	pw, ok := u.User.Password()
	if !ok || len(pw) < 8 {
		return ""
	}
	rest := u.Host + u.Path + u.RawQuery + u.Fragment + u.User.Username() + u.Scheme
	if strings.Contains(rest, pw) {
		return ""
	}
	return pw
}

// FuzzFallbackNeverOverspends drives one relay's Fallback, local_share
// policy, through reservations, refunds and outages of its primary, and
// checks after every step that what is outstanding (granted minus
// refunded) never exceeds the quota, and that once the primary is back its
// total covers everything outstanding.
func FuzzFallbackNeverOverspends(f *testing.F) {
	f.Add(uint16(10), uint8(1), []byte{0x00, 0x02, 0x10, 0x20, 0x02, 0x01, 0x00})
	f.Add(uint16(7), uint8(2), []byte{0x0c, 0x02, 0x0c, 0x0c, 0x01, 0x02, 0x0c, 0x03})
	f.Add(uint16(100), uint8(3), []byte{0x3c, 0x3c, 0x02, 0x3c, 0x01, 0x01, 0x02, 0x3c, 0x02, 0x3c})
	f.Fuzz(func(t *testing.T, quotaUnits uint16, relays uint8, ops []byte) {
		if relays == 0 || len(ops) > 200 {
			return
		}
		r := newFallbackRun(t, int64(quotaUnits)*1000, int(relays))
		for _, b := range ops {
			r.step(b)
			r.check()
		}
		r.primary.setFail(nil)
		if _, err := r.f.Used(r.ctx, "op", window0); err != nil {
			t.Fatalf("Used after recovery: %v", err)
		}
		if p := r.primary.usedNow("op", window0); p < r.outstanding {
			t.Fatalf("primary counts %d after recovery, less than the %d outstanding", p, r.outstanding)
		}
	})
}

// fallbackRun is one simulated relay for FuzzFallbackNeverOverspends.
type fallbackRun struct {
	t           *testing.T
	ctx         context.Context
	f           *Fallback
	primary     *fakeStore
	quota       int64
	grants      []int64 // milli of each grant not yet refunded
	outstanding int64
}

func newFallbackRun(t *testing.T, quota int64, relays int) *fallbackRun {
	primary := newFakeStore()
	f := WithFallback(primary, newFakeBudget(), FallbackOptions{
		Policy: PolicyLocalShare, ExpectedRelays: relays, ProbeInterval: -1,
	})
	return &fallbackRun{t: t, ctx: context.Background(), f: f, primary: primary, quota: quota}
}

var fuzzCosts = []int64{1000, 500, 334, 100}

// step decodes one operation from b: the low two bits pick reserve,
// refund, outage toggle or read; the rest parameterise it.
func (r *fallbackRun) step(b byte) {
	switch b & 3 {
	case 0:
		cost := fuzzCosts[(b>>2)&3]
		n := 1 + int(b>>4)
		k, err := r.f.Reserve(r.ctx, "op", window0, time.Hour, r.quota, cost, n)
		if err != nil {
			r.t.Fatalf("Reserve: %v", err)
		}
		if k > 0 {
			r.grants = append(r.grants, int64(k)*cost)
			r.outstanding += int64(k) * cost
		}
	case 1:
		if len(r.grants) == 0 {
			return
		}
		g := r.grants[len(r.grants)-1]
		r.grants = r.grants[:len(r.grants)-1]
		// The units were not used whatever the store says: a failed
		// refund only leaves them counted.
		r.outstanding -= g
		if err := r.f.Refund(r.ctx, "op", window0, g); err != nil && !errors.Is(err, ErrUnavailable) {
			r.t.Fatalf("Refund: %v", err)
		}
	case 2:
		if r.primary.fail == nil {
			r.primary.setFail(errFakeDown)
		} else {
			r.primary.setFail(nil)
		}
	case 3:
		if _, err := r.f.Used(r.ctx, "op", window0); err != nil && !errors.Is(err, ErrUnavailable) {
			r.t.Fatalf("Used: %v", err)
		}
	}
}

func (r *fallbackRun) check() {
	if r.outstanding > r.quota {
		r.t.Fatalf("%d milli outstanding, over the quota %d", r.outstanding, r.quota)
	}
}
