package journal

import "testing"

func TestJournalKeepsTheNewestEntriesUpToItsLimit(t *testing.T) {
	j := &Journal{Limit: 3}
	for i := range 5 {
		j.Record(Entry{Status: 200 + i})
	}
	got := j.Entries()
	if len(got) != 3 || got[0].Status != 202 || got[2].Status != 204 {
		t.Errorf("entries = %+v, want statuses 202..204", got)
	}
	if j.Dropped() != 2 {
		t.Errorf("dropped = %d, want 2", j.Dropped())
	}
	if n := len(j.Filter(func(e Entry) bool { return e.Status >= 203 })); n != 2 {
		t.Errorf("filter kept %d, want 2", n)
	}
	j.Reset()
	if len(j.Entries()) != 0 {
		t.Error("Reset kept entries")
	}
}

func TestANilJournalRecordsNothing(t *testing.T) {
	var j *Journal
	j.Record(Entry{})
	if j.Entries() != nil || j.Dropped() != 0 {
		t.Error("a nil journal returned entries")
	}
}
