package scheduler

import (
	"regexp"
	"time"

	"github.com/sluice-mta/sluice/config"
	"github.com/sluice-mta/sluice/delivery"
)

// defaultRules apply to an operator whose configuration gives no
// response_rule. They cover the replies with which the big providers say
// "slow down": too many connections (throttle: fewer connections, longer
// pauses) and rate limiting or volume deferrals (suspend: stop for a while,
// since every further attempt makes the block last longer).
var defaultRules = []config.ResponseRule{
	{
		Code:     "4*",
		Match:    regexp.MustCompile(`(?i)too many (connections|concurrent|simultaneous|sessions)|connection (limit|rate)`),
		Action:   config.ActionThrottle,
		Duration: 10 * time.Minute,
	},
	{
		Code:     "4*",
		Match:    regexp.MustCompile(`(?i)rate.?limit|too many (messages|mails|recipients)|sending rate|throttl|exceeded .*(limit|quota)|temporarily deferred|unexpected volume|unusual rate`),
		Action:   config.ActionSuspend,
		Duration: 15 * time.Minute,
	},
	{
		Code:     "421",
		Match:    regexp.MustCompile(`(?i)try again later`),
		Action:   config.ActionSuspend,
		Duration: 5 * time.Minute,
	},
}

// DefaultResponseRules returns the built-in rules, for documentation and
// the admin API.
func DefaultResponseRules() []config.ResponseRule { return defaultRules }

// throttleState halves connections and doubles the pause per level. After
// until passes, each successful transaction takes one level off.
type throttleState struct {
	level int
	until time.Time
}

const maxThrottleLevel = 4

// matchRule returns the first rule that matches reply.
func matchRule(rules []config.ResponseRule, r delivery.Reply) (*config.ResponseRule, bool) {
	if r.Code < 400 || r.Code >= 600 {
		return nil, false
	}
	for i := range rules {
		if rules[i].Matches(r.Code, r.Enhanced, r.Text) {
			return &rules[i], true
		}
	}
	return nil, false
}

// react applies the first matching rule for reply to op. It reports
// whether anything changed.
func (s *Scheduler) react(op *opState, r delivery.Reply, now time.Time) bool {
	rule, ok := matchRule(op.rules, r)
	if !ok {
		return false
	}
	switch rule.Action {
	case config.ActionSuspend:
		until := now.Add(rule.Duration)
		if !until.After(op.suspendedUntil) {
			return false
		}
		op.suspendedUntil, op.suspendReason = until, r.String()
		s.log.Info("operator suspended", "operator", op.key, "until", until.UTC().Format(time.RFC3339),
			"reply", r.String(), "reason", "response_rule")
	case config.ActionThrottle:
		op.throttle.level = min(op.throttle.level+1, maxThrottleLevel)
		op.throttle.until = now.Add(rule.Duration)
		s.log.Info("operator throttled", "operator", op.key, "level", op.throttle.level,
			"max_connections", op.maxConns(), "rate_delay", op.rateDelay().String(),
			"until", op.throttle.until.UTC().Format(time.RFC3339), "reply", r.String())
	default:
		return false
	}
	s.events.OperatorState(op.label, s.isSuspended(op, now))
	return true
}

// recover takes one throttle level off after a successful transaction once
// the throttle period is over.
func (s *Scheduler) recoverThrottle(op *opState, now time.Time) {
	if op.throttle.level == 0 || now.Before(op.throttle.until) {
		return
	}
	op.throttle.level--
	s.log.Info("operator throttle eased", "operator", op.key, "level", op.throttle.level,
		"max_connections", op.maxConns(), "rate_delay", op.rateDelay().String())
}

func (s *Scheduler) isSuspended(op *opState, now time.Time) bool {
	return now.Before(op.suspendedUntil)
}
