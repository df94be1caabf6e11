package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestTheMissingCapabilitiesAreTheBitsClearInCapBnd(t *testing.T) {
	status := filepath.Join(t.TempDir(), "status")
	// Every capability up to CAP_CHECKPOINT_RESTORE (bit 40) but
	// CAP_SYS_RESOURCE (bit 24), as on a VM without it.
	if err := os.WriteFile(status, []byte("Name:\tx\nCapBnd:\t000001fffeffffff\nCapAmb:\t0000000000000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := missingCapabilities(status)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]bool{"CAP_SYS_RESOURCE": true}; !reflect.DeepEqual(got, want) {
		t.Errorf("missingCapabilities = %v, want %v", got, want)
	}
}

func TestCommandFindsTheSubcommandAfterGlobalFlagsAndItsBundleAndProcess(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		cmd   string
		flags map[string]string
	}{
		{"dockerd's create", []string{"--root", "/var/run/docker/runtime-runc/moby", "--log", "/run/log.json", "--log-format", "json", "--systemd-cgroup", "create", "--bundle", "/b", "--pid-file", "/b/pid", "id"},
			"create", map[string]string{"bundle": "/b"}},
		{"short bundle flag", []string{"run", "-b", "/b", "id"}, "run", map[string]string{"bundle": "/b"}},
		{"flag=value", []string{"create", "--bundle=/b", "id"}, "create", map[string]string{"bundle": "/b"}},
		{"exec with a process file", []string{"--root", "/r", "exec", "--process", "/tmp/p.json", "--detach", "id"}, "exec", map[string]string{"process": "/tmp/p.json"}},
		{"no subcommand", []string{"--version"}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, flags := command(tc.args)
			if cmd != tc.cmd || (tc.flags != nil && !reflect.DeepEqual(flags, tc.flags)) {
				t.Errorf("command(%q) = %q, %v; want %q, %v", tc.args, cmd, flags, tc.cmd, tc.flags)
			}
		})
	}
}

func TestABundlesMissingCapabilitiesAreRemovedFromEverySetAndTheRestIsKept(t *testing.T) {
	bundle := t.TempDir()
	spec := `{"ociVersion":"1.2.0","process":{"user":{"uid":0,"gid":0},"args":["/sbin/init"],"oomScoreAdj":-998,
	"capabilities":{"bounding":["CAP_CHOWN","CAP_SYS_RESOURCE","CAP_SYS_ADMIN"],"effective":["CAP_SYS_RESOURCE","CAP_CHOWN"],
	"permitted":["CAP_CHOWN","CAP_SYS_RESOURCE"],"inheritable":[]}},"root":{"path":"rootfs"},"linux":{"resources":{"memory":{"limit":9223372036854771712}}}}`
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rewrite([]string{"--root", "/r", "create", "--bundle", bundle, "id"}, map[string]bool{"CAP_SYS_RESOURCE": true}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		OCIVersion string `json:"ociVersion"`
		Process    struct {
			OOMScoreAdj  int                 `json:"oomScoreAdj"`
			Capabilities map[string][]string `json:"capabilities"`
		} `json:"process"`
		Linux struct {
			Resources struct {
				Memory struct {
					Limit json.Number `json:"limit"`
				} `json:"memory"`
			} `json:"resources"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"bounding": {"CAP_CHOWN", "CAP_SYS_ADMIN"}, "effective": {"CAP_CHOWN"}, "permitted": {"CAP_CHOWN"}, "inheritable": {}}
	if !reflect.DeepEqual(got.Process.Capabilities, want) {
		t.Errorf("capabilities = %v, want %v", got.Process.Capabilities, want)
	}
	if got.OCIVersion != "1.2.0" || got.Process.OOMScoreAdj != -998 || got.Linux.Resources.Memory.Limit != "9223372036854771712" {
		t.Errorf("other fields changed: %s", data)
	}
	if info, _ := os.Stat(filepath.Join(bundle, "config.json")); info.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", info.Mode().Perm())
	}
}

func TestAnExecProcessFileLosesItsMissingCapabilitiesAndOtherCommandsTouchNothing(t *testing.T) {
	dir := t.TempDir()
	process := filepath.Join(dir, "process.json")
	if err := os.WriteFile(process, []byte(`{"args":["sh"],"capabilities":{"bounding":["CAP_SYS_RESOURCE","CAP_KILL"]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := map[string]bool{"CAP_SYS_RESOURCE": true}
	if err := rewrite([]string{"exec", "-p", process, "id"}, missing); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(process)
	if string(data) != `{"args":["sh"],"capabilities":{"bounding":["CAP_KILL"]}}` {
		t.Errorf("process file = %s", data)
	}
	untouched := `{"process":{"capabilities":{"bounding":["CAP_SYS_RESOURCE"]}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(untouched), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"state", "id"}, {"delete", "--force", "id"}, {"--version"}} {
		if err := rewrite(args, missing); err != nil {
			t.Errorf("rewrite(%q): %v", args, err)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "config.json")); string(data) != untouched {
		t.Errorf("a command other than create, run and exec changed a spec: %s", data)
	}
}

func TestASpecWithNothingMissingIsLeftByteForByte(t *testing.T) {
	spec := []byte(`{"process":{"capabilities":{"bounding":["CAP_CHOWN"]}},  "x": 1}`)
	out, changed, err := dropCapabilities(spec, map[string]bool{"CAP_SYS_RESOURCE": true}, "process", "capabilities")
	if err != nil || changed || string(out) != string(spec) {
		t.Errorf("dropCapabilities = %s, %v, %v; want the input unchanged", out, changed, err)
	}
	if _, _, err := dropCapabilities([]byte(`{`), nil, "process"); err == nil {
		t.Error("dropCapabilities of broken JSON: no error")
	}
}
