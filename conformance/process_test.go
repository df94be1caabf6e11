package conformance

import (
	"io"
	"testing"
	"time"
)

func TestAProcessKilledStartsAgainAndOnlyItsOwnExitsAreCrashes(t *testing.T) {
	p, err := startProcess(io.Discard, "/bin/sleep", "", nil, "60")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := p.Terminate(); err == nil {
		t.Error("Terminate of a process that has not started again: no error")
	}
	waitFor(t, func() bool { return p.Starts() == 2 })
	if err := p.Terminate(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return p.Starts() == 3 })
	if c := p.Crashes(); len(c) != 0 {
		t.Errorf("crashes after a kill and a terminate: %v", c)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	time.Sleep(2 * restartDelay)
	if n := p.Starts(); n != 3 {
		t.Errorf("a stopped process started again: %d starts", n)
	}
}

func TestAProcessThatExitsOnItsOwnIsACrashAndStartsAgain(t *testing.T) {
	p, err := startProcess(io.Discard, "/bin/false", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return p.Starts() >= 2 })
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if c := p.Crashes(); len(c) < 1 || c[0] != "false exited: exit status 1" {
		t.Errorf("crashes = %q, want the exit of false", c)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met after 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
