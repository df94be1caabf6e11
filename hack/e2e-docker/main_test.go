package main

import (
	"strings"
	"testing"

	"github.com/kvsync/kvsync/scenarios"
)

func TestCheckLogsHoldsTheContainersToTheRules(t *testing.T) {
	const elected = `{"logger":"leaderelection","msg":"Successfully acquired lease"}` + "\n"
	tests := []struct {
		name string
		logs string
		want string
	}{
		{"a clean run passes", elected, ""},
		{"a vault value in the logs fails", elected + "value=" + scenarios.Canary + "-1\n", "vault value"},
		{"an RBAC denial of the controller fails", elected +
			`err="events is forbidden: User \"system:serviceaccount:kvsync-system:kvsync-controller\" cannot create resource \"events\""`, "RBAC denied"},
		{"no leader fails", "", "leader election"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkLogs(tt.logs)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
