package scheduler

import (
	"strings"
	"time"

	"github.com/sluice-mta/sluice/config"
)

// opState is the live state of one operator, route policy or default
// destination. It is owned by the loop goroutine.
type opState struct {
	key    string // budget key and unique name: "bigmail", "route:*.corp", "default:example.org"
	label  string // bounded metric label: the operator name, "route:…" or "default"
	limits config.Limits
	rules  []config.ResponseRule
	kind   opKind

	ready readyQueue
	conns int // live workers (busy or idle) for this operator
	busy  int // workers running a transaction

	lastStart time.Time // start of the last transaction, for rate_delay

	window    Window
	usedMilli int64 // units used in window, including reservations in flight
	spent     bool  // budget found exhausted in this window (logged once)

	budgetDownUntil time.Time // the budget store failed: wait until then

	suspendedUntil time.Time
	suspendReason  string
	throttle       throttleState

	wakeAt time.Time // earliest pending op timer, zero if none
}

type opKind uint8

const (
	kindOperator opKind = iota
	kindRoute
	kindDefault
)

// hasQuota reports whether the operator's sending is limited per window.
func (o *opState) hasQuota() bool { return o.limits.Quota > 0 }

func (o *opState) quotaMilli() int64 { return int64(o.limits.Quota) * UnitMilli }

// maxConns is the current connection limit, reduced while throttled.
func (o *opState) maxConns() int {
	n := o.limits.MaxConnections
	for i := 0; i < o.throttle.level && n > 1; i++ {
		n = (n + 1) / 2
	}
	return max(n, 1)
}

// rateDelay is the current pause between transactions, increased while
// throttled.
func (o *opState) rateDelay() time.Duration {
	d := o.limits.RateDelay
	if o.throttle.level > 0 && d == 0 {
		d = time.Second
	}
	for i := 0; i < o.throttle.level; i++ {
		d *= 2
	}
	return d
}

// guard returns the guard band of the operator's windows.
func (o *opState) guard() time.Duration {
	if !o.hasQuota() {
		return 0
	}
	return o.limits.WindowGuard
}

// domainClass is what the loop knows about one recipient domain.
type domainClass struct {
	op      *opState // nil while unknown
	expires time.Time
	// pending holds the domain's ready recipients while an MX lookup
	// decides their operator.
	pending   []prioEntry
	lookingUp bool
}

// policies builds operator states from a configuration.
type policies struct {
	cfg       *config.Config
	ops       map[string]*opState
	mxPattern bool // some operator has mx_patterns: unlisted domains need an MX lookup
}

func newPolicies(cfg *config.Config) *policies {
	p := &policies{cfg: cfg, ops: make(map[string]*opState)}
	for i := range cfg.Operators {
		if len(cfg.Operators[i].MXPatterns) > 0 {
			p.mxPattern = true
		}
	}
	return p
}

// byDomainList returns the operator state for a domain decided by the
// configuration alone, and whether an MX lookup could still change it.
func (p *policies) byDomainList(domain string) (op *opState, needMX bool) {
	if o, ok := p.cfg.OperatorFor(domain); ok {
		return p.operator(o), false
	}
	return nil, p.mxPattern
}

// fallback returns the route or default policy for a domain that belongs to
// no operator.
func (p *policies) fallback(domain string) *opState {
	if r, ok := p.cfg.RouteFor(domain); ok {
		return p.route(r)
	}
	return p.get("default:"+domain, "default", kindDefault, p.cfg.Default)
}

func (p *policies) operator(o *config.Operator) *opState {
	return p.get(o.Name, o.Name, kindOperator, o.Limits)
}

func (p *policies) route(r *config.Route) *opState {
	name := "route:" + joinDomains(r.Domains)
	return p.get(name, name, kindRoute, r.Limits)
}

func (p *policies) get(key, label string, kind opKind, l config.Limits) *opState {
	if o, ok := p.ops[key]; ok {
		return o
	}
	o := &opState{key: key, label: label, kind: kind}
	o.setLimits(l)
	p.ops[key] = o
	return o
}

func (o *opState) setLimits(l config.Limits) {
	o.limits = l
	if o.limits.MaxConnections <= 0 {
		o.limits.MaxConnections = 1
	}
	if o.limits.MaxRecipientsPerTransaction <= 0 {
		o.limits.MaxRecipientsPerTransaction = 1
	}
	if o.limits.MaxMessagesPerConnection <= 0 {
		o.limits.MaxMessagesPerConnection = 1
	}
	if o.limits.Window <= 0 {
		o.limits.Window = time.Hour
	}
	o.rules = l.ResponseRules
	if !l.ResponseRulesSet {
		o.rules = defaultRules
	}
}

func joinDomains(ds []string) string { return strings.Join(ds, ",") }

// domainOf returns the lower-cased domain of an address.
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(addr[i+1:], "."))
}
