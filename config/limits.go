package config

import (
	"path"
	"regexp"
	"strconv"
	"time"
)

// TLS policies for outbound connections.
const (
	TLSOpportunistic = "opportunistic"
	TLSRequired      = "required"
)

// Response rule actions.
const (
	ActionSuspend  = "suspend"
	ActionThrottle = "throttle"
)

// Limits is the delivery policy shared by [[operator]], [default] and
// [[route]].
type Limits struct {
	Quota                       int           // recipients per window; 0 means no quota
	Window                      time.Duration // divides 24h; aligned to the clock in Location
	Timezone                    string
	Location                    *time.Location
	MaxConnections              int
	RateDelay                   time.Duration // pause between transactions; 0 means none
	MaxRecipientsPerTransaction int
	MaxMessagesPerConnection    int
	RefundRejected              bool          // a 4xx/5xx RCPT reply gives the unit back
	PriorityAging               time.Duration // 0 means off
	MaxBacklogWindows           int           // 0 means off
	WindowGuard                 time.Duration // no new transaction this close to a window edge
	EnvelopeFrom                string        // "" means the message's own sender
	VERP                        bool
	TLS                         string // TLSOpportunistic or TLSRequired
	TLSVerify                   bool

	ResponseRules []ResponseRule
	// ResponseRulesSet tells whether the file gave response_rule at all
	// (even as an empty list); when false the scheduler uses its built-in
	// rules.
	ResponseRulesSet bool
}

// ResponseRule reacts to a remote reply: when it matches, the operator is
// suspended or throttled for Duration.
type ResponseRule struct {
	Match    *regexp.Regexp // on the reply text; nil matches any text
	Code     string         // glob on the basic or enhanced code ("421", "4.7.*", "45?"); "" matches any
	Action   string         // ActionSuspend or ActionThrottle
	Duration time.Duration
}

// Matches reports whether the rule applies to a reply with the given basic
// code (421), enhanced code ("4.7.0", may be empty) and text.
func (r *ResponseRule) Matches(code int, enhanced, text string) bool {
	if r.Code != "" && !globMatch(r.Code, strconv.Itoa(code)) && (enhanced == "" || !globMatch(r.Code, enhanced)) {
		return false
	}
	return r.Match == nil || r.Match.MatchString(text)
}

// globMatch matches s against a glob of literal characters, '*' (any run,
// dots included) and '?' (any one character). Patterns are checked at load
// time to hold no other special characters, so path.Match cannot fail.
func globMatch(pattern, s string) bool {
	ok, err := path.Match(pattern, s)
	return ok && err == nil
}

// limitDefaults are the defaults that differ between the tables holding
// limits.
type limitDefaults struct {
	maxConnections int
}

// limits checks the limit keys of the table at prefix.
func (c *checker) limits(prefix string, r *rawLimits, def limitDefaults) Limits {
	k := func(name string) string { return childPath(prefix, name) }
	l := Limits{
		Quota:                       c.count(k("quota"), r.Quota, 0, 0),
		MaxConnections:              c.count(k("max_connections"), r.MaxConnections, def.maxConnections, 1),
		RateDelay:                   c.nonNegative(k("rate_delay"), r.RateDelay, 0),
		MaxRecipientsPerTransaction: c.count(k("max_recipients_per_transaction"), r.MaxRecipientsPerTransaction, 50, 1),
		MaxMessagesPerConnection:    c.count(k("max_messages_per_connection"), r.MaxMessagesPerConnection, 100, 1),
		RefundRejected:              c.boolean(k("refund_rejected"), r.RefundRejected, false),
		MaxBacklogWindows:           c.count(k("max_backlog_windows"), r.MaxBacklogWindows, 0, 0),
		VERP:                        c.boolean(k("verp"), r.VERP, false),
		TLS:                         c.enum(k("tls"), r.TLS, TLSOpportunistic, TLSOpportunistic, TLSRequired),
		TLSVerify:                   c.boolean(k("tls_verify"), r.TLSVerify, false),
	}
	l.Window = c.window(k("window"), r.Window)
	l.WindowGuard = c.windowGuard(k("window_guard"), r.WindowGuard, l.Window)
	l.Timezone, l.Location = c.timezone(k("timezone"), r.Timezone)
	l.PriorityAging = c.nonNegative(k("priority_aging"), r.PriorityAging, 0)
	if l.PriorityAging > 0 && l.PriorityAging < time.Second {
		c.errorf(k("priority_aging"), "must be 0 (off) or at least 1s")
	}
	l.EnvelopeFrom, _ = c.str(k("envelope_from"), r.EnvelopeFrom, "")
	if err := checkMailbox(l.EnvelopeFrom); l.EnvelopeFrom != "" && err != nil {
		c.errorf(k("envelope_from"), "%q %v", l.EnvelopeFrom, err)
	}
	if l.VERP && l.EnvelopeFrom == "" {
		c.errorf(k("verp"), "requires envelope_from: VERP builds the sender from its local part and domain")
	}
	l.ResponseRulesSet = c.idx.has(k("response_rule"))
	l.ResponseRules = c.responseRules(k("response_rule"), r.ResponseRules)
	return l
}

// nonNegative returns a duration that may be 0.
func (c *checker) nonNegative(key string, v any, def time.Duration) time.Duration {
	d, _ := c.duration(key, v, def)
	return d
}

// window checks a budget window: whole seconds from 1s that divide a day,
// so that windows stay aligned to the clock day after day.
func (c *checker) window(key string, v any) time.Duration {
	const def = time.Hour
	w, ok := c.duration(key, v, def)
	if !ok {
		return def
	}
	text, _ := v.(string)
	switch {
	case w < time.Second:
		c.errorf(key, "%q must be at least 1s", text)
	case w%time.Second != 0:
		c.errorf(key, "%q must be a whole number of seconds", text)
	case (24*time.Hour)%w != 0:
		c.errorf(key, "%q does not divide a day", text)
	default:
		return w
	}
	return def
}

// windowGuard checks window_guard against the window. Absent, it is 1s, or
// window/8 for windows under 8s, so that short test windows still have room.
func (c *checker) windowGuard(key string, v any, window time.Duration) time.Duration {
	def := time.Second
	if window < 8*time.Second {
		def = window / 8
	}
	g, ok := c.duration(key, v, def)
	if ok && g >= window/4 {
		c.errorf(key, "%s must be under a quarter of the window (%s)", Duration(g), Duration(window))
		return def
	}
	return g
}

// timezone loads the window's time zone.
func (c *checker) timezone(key string, v any) (string, *time.Location) {
	name, given := c.str(key, v, "UTC")
	if given && name == "" {
		c.errorf(key, "must not be empty (use \"UTC\")")
		return "UTC", time.UTC
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		c.errorf(key, "%q is not a known time zone: %v", name, err)
		return "UTC", time.UTC
	}
	return name, loc
}

// responseRules checks [[...response_rule]] entries.
func (c *checker) responseRules(prefix string, raws []rawResponseRule) []ResponseRule {
	var out []ResponseRule
	for i := range raws {
		r := &raws[i]
		p := elemPath(prefix, i)
		k := func(name string) string { return childPath(p, name) }
		rule := ResponseRule{
			Action:   c.enum(k("action"), r.Action, "", ActionSuspend, ActionThrottle),
			Duration: c.positive(k("duration"), r.Duration, 0),
		}
		c.required(k("action"), r.Action)
		c.required(k("duration"), r.Duration)
		if m, ok := c.str(k("match"), r.Match, ""); ok {
			re, err := regexp.Compile(m)
			if err != nil {
				c.errorf(k("match"), "is not a valid regular expression: %v", err)
			}
			rule.Match = re
		}
		rule.Code, _ = c.str(k("code"), r.Code, "")
		if err := checkCodeGlob(rule.Code); r.Code != nil && err != "" {
			c.errorf(k("code"), "%q %s", rule.Code, err)
		}
		if r.Match == nil && r.Code == nil {
			c.errorf(p, "needs match, code or both")
		}
		out = append(out, rule)
	}
	return out
}

// checkCodeGlob says why s is not a reply-code glob: digits and dots, with
// '*' and '?' as wildcards (RFC 5321 section 4.2, RFC 3463 section 2).
func checkCodeGlob(s string) string {
	if s == "" {
		return "must not be empty"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c == '.' || c == '*' || c == '?') {
			return "may only hold digits, '.', '*' and '?'"
		}
	}
	return ""
}
