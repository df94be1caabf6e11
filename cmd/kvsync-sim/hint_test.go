package main

import "testing"

func TestTheOutcomeOfAChangeIsTheControllersRuleForItsItems(t *testing.T) {
	lost := change{secret: "api-key", lost: true, cause: "object-not-found"}
	for _, tt := range []struct {
		name                   string
		ch                     change
		total, failed, touched int
		want                   string
	}{
		{"no item reads the secret", lost, 3, 0, 0, "unaffected"},
		{"one item of three fails", lost, 3, 1, 1, "PartialSync"},
		{"every item fails", lost, 2, 2, 2, "ProviderError"},
		{"a new value read by an item", change{secret: "db", newValue: true}, 3, 0, 2, "UpdateValueChangeOrForceUpdateSucceeded"},
		{"a secret readable again", change{secret: "db"}, 3, 0, 1, "UpdateNoValueChangeSucceeded|UpdateValueChangeOrForceUpdateSucceeded"},
		{"a role that reads nothing", change{identity: true, roles: []string{"Key Vault Reader"}}, 2, 2, 2, "ProviderError"},
	} {
		if got, _ := outcome(tt.ch, tt.total, tt.failed, tt.touched); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}
