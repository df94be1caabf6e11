// Command runc is an OCI runtime for dockerd that runs the real runc with
// every capability the host cannot grant removed from the specs it is
// given. kind's nodes are privileged containers, which ask for every
// capability; on a host whose capability bounding set lacks one (a VM
// without CAP_SYS_RESOURCE, say) runc fails with "unable to apply caps:
// operation not permitted". dockerd uses it as its default runtime
// (`dockerd --add-runtime kvsync=PATH --default-runtime kvsync`; see
// hack/kind/dockerd.sh), and containers get the host's capabilities less
// nothing else.
//
// It rewrites <bundle>/config.json for `create` and `run` (--bundle, or the
// working directory) and the process file of `exec --process`, then
// replaces itself with the runc named by KVSYNC_RUNC (default
// /usr/sbin/runc, then runc on PATH), with the same arguments.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "kvsync runc: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	missing, err := missingCapabilities("/proc/self/status")
	if err != nil {
		return err
	}
	if err := rewrite(args, missing); err != nil {
		return err
	}
	real, err := realRunc()
	if err != nil {
		return err
	}
	return syscall.Exec(real, append([]string{real}, args...), os.Environ())
}

// realRunc is the runc this wrapper runs.
func realRunc() (string, error) {
	if p := os.Getenv("KVSYNC_RUNC"); p != "" {
		return p, nil
	}
	self, _ := os.Executable()
	for _, p := range []string{"/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc"} {
		if _, err := os.Stat(p); err == nil && p != self {
			return p, nil
		}
	}
	p, err := exec.LookPath("runc")
	if err != nil || p == self {
		return "", errors.New("no runc found: set KVSYNC_RUNC to its path")
	}
	return p, nil
}

// rewrite removes the missing capabilities from the specs the command line
// names: the bundle's config.json of create and run, the process file of
// exec.
func rewrite(args []string, missing map[string]bool) error {
	cmd, flags := command(args)
	switch cmd {
	case "create", "run":
		bundle := flags["bundle"]
		if bundle == "" {
			bundle = "."
		}
		return rewriteFile(filepath.Join(bundle, "config.json"), missing, "process", "capabilities")
	case "exec":
		if p := flags["process"]; p != "" {
			return rewriteFile(p, missing, "capabilities")
		}
	}
	return nil
}

// command finds runc's subcommand among args, after its global flags, and
// the values of the subcommand's --bundle/-b and --process/-p flags.
func command(args []string) (string, map[string]string) {
	// Global flags of runc that take a value.
	valued := map[string]bool{"--log": true, "--log-format": true, "--root": true, "--criu": true, "--rootless": true}
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			break
		}
		if valued[a] {
			i++
		}
	}
	if i >= len(args) {
		return "", nil
	}
	cmd, flags := args[i], map[string]string{}
	names := map[string]string{"--bundle": "bundle", "-b": "bundle", "--process": "process", "-p": "process"}
	for j := i + 1; j < len(args); j++ {
		a := args[j]
		if name, value, ok := strings.Cut(a, "="); ok {
			if key, known := names[name]; known {
				flags[key] = value
			}
			continue
		}
		if key, known := names[a]; known && j+1 < len(args) {
			flags[key] = args[j+1]
			j++
		}
	}
	return cmd, flags
}

// rewriteFile removes the missing capabilities from the capabilities
// object at path in the JSON file, keeping every other field as it was. A
// file without that object is left alone.
func rewriteFile(file string, missing map[string]bool, path ...string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("reading the spec: %w", err)
	}
	out, changed, err := dropCapabilities(data, missing, path...)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if !changed {
		return nil
	}
	info, err := os.Stat(file)
	if err != nil {
		return err
	}
	return os.WriteFile(file, out, info.Mode().Perm())
}

// dropCapabilities returns the JSON document data with every missing
// capability removed from each set of the capabilities object at path, and
// whether anything was removed.
func dropCapabilities(data []byte, missing map[string]bool, path ...string) ([]byte, bool, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, false, fmt.Errorf("parsing: %w", err)
	}
	obj := doc
	for _, key := range path {
		next, ok := obj[key].(map[string]any)
		if !ok {
			return data, false, nil
		}
		obj = next
	}
	changed := false
	for set, v := range obj {
		list, ok := v.([]any)
		if !ok {
			continue
		}
		kept := make([]any, 0, len(list))
		for _, c := range list {
			if name, ok := c.(string); ok && missing[name] {
				changed = true
				continue
			}
			kept = append(kept, c)
		}
		obj[set] = kept
	}
	if !changed {
		return data, false, nil
	}
	out, err := json.Marshal(doc)
	return out, true, err
}

// missingCapabilities reads the capability bounding set (CapBnd) of the
// process status file at path and returns the names of the capabilities
// it lacks (CAP_SYS_RESOURCE, ...). A capability this wrapper does not
// know by name is never reported missing.
func missingCapabilities(path string) (map[string]bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the capability bounding set: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		hex, ok := strings.CutPrefix(line, "CapBnd:")
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("parsing CapBnd %q: %w", hex, err)
		}
		set := map[string]bool{}
		for bit, name := range capabilityNames {
			if mask&(1<<uint(bit)) == 0 {
				set[name] = true
			}
		}
		return set, nil
	}
	return nil, fmt.Errorf("no CapBnd line in %s", path)
}

// capabilityNames are Linux's capabilities by bit number
// (include/uapi/linux/capability.h).
var capabilityNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}
