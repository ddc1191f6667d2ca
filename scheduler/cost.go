package scheduler

import "time"

// UnitMilli is one recipient at priority 1: budgets are counted in
// milli-units so that fractional costs never drift (DESIGN.md).
const UnitMilli = 1000

// CostMilli is what one recipient of a message with the given priority
// (times 1000) costs: ceil(1000 / N) milli-units for priority N. Priorities
// below 1 are treated as 1.
func CostMilli(priorityMilli uint32) int64 {
	p := int64(max(priorityMilli, UnitMilli))
	return (UnitMilli*UnitMilli + p - 1) / p
}

// EffectivePriorityMilli is the priority used to order ready mail: the
// declared priority plus one full step (1000) for every whole aging interval
// the message has waited since it arrived. aging <= 0 turns aging off. The
// cost is never affected.
func EffectivePriorityMilli(priorityMilli uint32, arrival, now time.Time, aging time.Duration) int64 {
	p := int64(priorityMilli)
	if aging <= 0 || !now.After(arrival) {
		return p
	}
	return p + int64(now.Sub(arrival)/aging)*UnitMilli
}
