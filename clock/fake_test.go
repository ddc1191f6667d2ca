package clock

import (
	"testing"
	"time"
)

func TestFakeFiresInOrder(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(start)
	late := f.NewTimer(3 * time.Second)
	early := f.NewTimer(1 * time.Second)
	stopped := f.NewTimer(2 * time.Second)
	if !stopped.Stop() {
		t.Fatal("Stop of an armed timer reported inactive")
	}
	f.Advance(2 * time.Second)
	select {
	case got := <-early.C():
		if want := start.Add(time.Second); !got.Equal(want) {
			t.Errorf("early fired at %v, want %v", got, want)
		}
	default:
		t.Fatal("early timer did not fire")
	}
	select {
	case <-late.C():
		t.Fatal("late timer fired before its deadline")
	default:
	}
	if got := f.Pending(); got != 1 {
		t.Errorf("Pending = %d, want 1", got)
	}
	f.Advance(time.Second)
	select {
	case <-late.C():
	default:
		t.Fatal("late timer did not fire at its deadline")
	}
	select {
	case <-stopped.C():
		t.Fatal("stopped timer fired")
	default:
	}
}

func TestFakeSetBackwardsKeepsTimers(t *testing.T) {
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	f := NewFake(start)
	tm := f.NewTimer(time.Minute)
	f.Set(start.Add(-time.Hour))
	select {
	case <-tm.C():
		t.Fatal("timer fired after a backwards step")
	default:
	}
	if got := f.Now(); !got.Equal(start.Add(-time.Hour)) {
		t.Errorf("Now = %v after Set", got)
	}
	armed := f.Armed()
	tm.Reset(time.Second)
	select {
	case <-armed:
	default:
		t.Error("Armed channel not closed by Reset")
	}
	f.Advance(time.Second)
	select {
	case <-tm.C():
	default:
		t.Fatal("reset timer did not fire")
	}
}

func TestFakeZeroDurationFiresAtOnce(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	tm := f.NewTimer(0)
	select {
	case <-tm.C():
	default:
		t.Fatal("zero-duration timer did not fire at once")
	}
}
