package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
	"github.com/kvsync/kvsync/conformance"
	"github.com/kvsync/kvsync/troubleshoot"
)

// kubectl runs the plugin with args and returns its output and exit code.
func kubectl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRoot(&out, &errOut, false)
	cmd.SetArgs(args)
	code := 0
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		code = exitCode(err)
		errOut.WriteString(err.Error())
	}
	return out.String() + errOut.String(), code
}

func TestExplainPrintsTheGuideOffline(t *testing.T) {
	out, code := kubectl(t, "explain", "providererror")
	if code != 0 || !strings.Contains(out, "The provider could not read the vault") || !strings.Contains(out, "vault-firewall:") ||
		!strings.Contains(out, "az keyvault network-rule list --name <vault>") {
		t.Errorf("explain ProviderError (%d):\n%s", code, out)
	}
	out, code = kubectl(t, "explain")
	if code != 0 || strings.Count(out, "\n") != 14 {
		t.Errorf("explain lists %d lines, want a header and 13 reasons:\n%s", strings.Count(out, "\n"), out)
	}
	out, code = kubectl(t, "explain", "AllGood")
	if code != 2 || !strings.Contains(out, `"AllGood" is neither a SecretSync reason nor a cause`) || !strings.Contains(out, "vault-firewall") {
		t.Errorf("explain of an unknown reason (%d): %s", code, out)
	}
	if out, _ := kubectl(t, "explain", "ControllerInternalError"); !strings.Contains(out, "namespace azure-secret-store is kvsync-system here") ||
		!strings.Contains(out, "provider-azure-installer is provider-azure") {
		t.Errorf("explain shows log commands without the guide's names mapped to kvsync's:\n%s", out)
	}
	// A cause as doctor names it: its reason and that cause alone.
	out, code = kubectl(t, "explain", "vault-firewall")
	if code != 0 || !strings.HasPrefix(out, "ProviderError") || !strings.Contains(out, "vault-firewall:") || strings.Contains(out, "rbac-role-missing") {
		t.Errorf("explain vault-firewall (%d):\n%s", code, out)
	}
	// Every text is filled: placeholders, never a template.
	for _, r := range troubleshoot.Reasons() {
		out, _ := kubectl(t, "explain", r.Name)
		if strings.Contains(out, "{{") {
			t.Errorf("explain %s prints a raw template:\n%s", r.Name, out)
		}
	}
	for _, c := range troubleshoot.Causes() {
		out, _ := kubectl(t, "explain", c.ID)
		if strings.Contains(out, "{{") || !strings.Contains(out, c.ID+":") && c.Reason != "CreateSucceeded" && c.ID != "synced" {
			t.Errorf("explain %s:\n%s", c.ID, out)
		}
	}
	out, _ = kubectl(t, "explain", "PartialSync", "-o", "json")
	var e explanation
	if err := json.Unmarshal([]byte(out), &e); err != nil || e.Name != "PartialSync" || len(e.Causes) == 0 {
		t.Errorf("explain -o json: %v\n%s", err, out)
	}
	if out, code := kubectl(t, "explain", "-o", "xml"); code != 2 || !strings.Contains(out, "unknown output format") {
		t.Errorf("-o xml (%d): %s", code, out)
	}
}

func TestLintExitsOneOnAProblemAndZeroOtherwise(t *testing.T) {
	if out, code := kubectl(t, "lint", "../../examples/secretproviderclass.yaml", "../../examples/secretsync.yaml"); code != 0 || !strings.Contains(out, "no problems found") {
		t.Errorf("lint of the examples (%d): %s", code, out)
	}
	out, code := kubectl(t, "lint", "../../troubleshoot/testdata/lint/no-vault.yaml")
	if code != 1 || !strings.Contains(out, "no-vault.yaml:9 SecretProviderClass kv: spec.parameters: keyvaultName is not set") {
		t.Errorf("lint of a bad class (%d): %s", code, out)
	}
	if out, code := kubectl(t, "lint", "../../examples/"); code != 0 || !strings.Contains(out, "no problems found in") {
		t.Errorf("lint of the examples' directory (%d): %s", code, out)
	}
	out, code = kubectl(t, "lint", "../../troubleshoot/testdata/lint/")
	if code != 1 || !strings.Contains(out, "type-not-allowed.yaml:11 SecretSync db: spec.secretObject.type:") {
		t.Errorf("lint of a directory of bad manifests (%d): %s", code, out)
	}
	if out, code := kubectl(t, "lint", "--allowed-secret-types=Opaque,Foo", "../../troubleshoot/testdata/lint/type-not-allowed.yaml"); code != 0 {
		t.Errorf("lint with the cluster's allowed types (%d): %s", code, out)
	}
	if out, code := kubectl(t, "lint", t.TempDir()); code != 2 || !strings.Contains(out, "holds no .yaml") {
		t.Errorf("lint of an empty directory (%d): %s", code, out)
	}
	if out, code := kubectl(t, "lint", "/does/not/exist.yaml"); code != 2 || !strings.Contains(out, "no such file") {
		t.Errorf("lint of a missing file (%d): %s", code, out)
	}
}

// TestStatusAndDoctorReadTheCluster creates SecretSyncs with the statuses
// the controller writes and runs status and doctor against them.
func TestPlanPrintsTheJitterAFleetNeedsAndRefusesBadInput(t *testing.T) {
	out, code := kubectl(t, "plan", "--clusters", "1000", "--secrets-per-cluster", "20")
	for _, want := range []string{"20000", "WAVE AT JITTER 0s", "100%", "54s (0.0075%)", "Set jitterSeconds to at least 54."} {
		if !strings.Contains(out, want) || code != 0 {
			t.Errorf("plan lacks %q (exit %d):\n%s", want, code, out)
		}
	}
	out, _ = kubectl(t, "plan", "--clusters", "1000", "--secrets-per-cluster", "20", "--jitter", "2m")
	if !strings.Contains(out, "jitterSeconds 120 is enough (at least 54 needed).") {
		t.Errorf("plan with enough jitter:\n%s", out)
	}
	out, _ = kubectl(t, "plan", "--clusters", "10000", "--secrets-per-cluster", "50", "--poll", "5m")
	if !strings.Contains(out, "Steady polling is throttled too: poll no more often than every 1364s") {
		t.Errorf("plan of a fleet that polls too often:\n%s", out)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"plan", "--clusters", "10"}, "give --secrets-per-cluster, or --from-cluster"},
		{[]string{"plan", "--clusters", "0", "--secrets-per-cluster", "5"}, "clusters must be at least 1"},
		{[]string{"plan", "--clusters", "10", "--secrets-per-cluster", "5", "--throttle-chance", "2"}, "--throttle-chance must be between 0 and 1"},
		{[]string{"plan", "--clusters", "10", "--secrets-per-cluster", "5", "--poll", "0s"}, "poll interval must be more than 0"},
	} {
		if out, code := kubectl(t, tt.args...); code != 2 || !strings.Contains(out, tt.want) {
			t.Errorf("%q: exit %d, %q; want exit 2 naming %q", tt.args, code, out, tt.want)
		}
	}
}

// TestDocsFleetHoldsTheTableThatPlanPrints keeps docs/fleet.md's table the
// one `kubectl kvsync plan --table` prints.
func TestDocsFleetHoldsTheTableThatPlanPrints(t *testing.T) {
	out, code := kubectl(t, "plan", "--table")
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "fleet.md"))
	if err != nil || code != 0 {
		t.Fatalf("%v, exit %d", err, code)
	}
	if !strings.Contains(string(doc), out) {
		t.Errorf("docs/fleet.md does not hold the table `kubectl kvsync plan --table` prints; paste it in:\n%s", out)
	}
}

func TestStatusAndDoctorReadTheCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts envtest")
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{"../../deploy/crds"}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := conformance.WriteAdminKubeconfig(env, "operator", kubeconfig); err != nil {
		t.Fatal(err)
	}
	c, _, err := clientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "payments"}}))
	must(c.Create(ctx, &spcv1.SecretProviderClass{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "kv"},
		Spec: spcv1.SecretProviderClassSpec{Provider: "azure", Parameters: map[string]string{"keyvaultName": "kv-payments",
			"clientID": "00000000-0000-0000-0000-000000000001", "tenantID": "00000000-0000-0000-0000-0000000000aa",
			"objects": "array:\n  - |\n    objectName: db-password\n    objectType: secret\n"}}}))
	now := metav1.NewTime(time.Now().Add(-5 * time.Minute))
	create := func(name, reason, msg string, ok bool) {
		ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: name},
			Spec: ssv1alpha1.SecretSyncSpec{ServiceAccountName: "workload", SecretProviderClassName: "kv",
				SecretObject: ssv1alpha1.SecretObject{Data: []ssv1alpha1.SecretObjectData{{SourcePath: "db-password", TargetKey: "password"}}}}}
		must(c.Create(ctx, ss))
		status := metav1.ConditionFalse
		if ok {
			status = metav1.ConditionTrue
			ss.Status.LastSuccessfulSyncTime = &now
		}
		ss.Status.Conditions = []metav1.Condition{{Type: "Update", Status: status, Reason: reason, Message: msg, LastTransitionTime: now}}
		must(c.Status().Update(ctx, ss))
	}
	create("db", "PartialSync", `{"items":[{"targetKey":"password","sourcePath":"db-password","status":"Failed","error":"reading secret \"db-password\" in key vault \"kv-payments\": SecretDisabled (HTTP 403): Operation get is not allowed on a disabled secret."},{"targetKey":"user","sourcePath":"db-user","status":"Succeeded"}]}`, false)
	create("web", "UpdateNoValueChangeSucceeded", "", true)

	// The controller's metrics, as its replica serves them: the last check
	// of each SecretSync it checked.
	t.Setenv("KVSYNC_METRICS_URL", "")
	var checked []string
	metrics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "# TYPE %s gauge\n", troubleshoot.LastCheckMetric)
		for _, name := range checked {
			fmt.Fprintf(w, "%s{name=%q,namespace=\"payments\"} %.3f\n", troubleshoot.LastCheckMetric, name, float64(time.Now().Add(-7*time.Second).UnixMilli())/1000)
		}
	}))
	t.Cleanup(metrics.Close)

	checked = []string{"web"}
	out, code := kubectl(t, "--kubeconfig", kubeconfig, "status", "-n", "payments", "--metrics-url", metrics.URL)
	t.Logf("kubectl kvsync status -n payments:\n%s", out)
	for _, want := range []string{"NAME", "LAST CHECK", "IN SYNC SINCE", "db", "PartialSync", "unknown", "object-disabled", "password", "SecretDisabled",
		"web", "UpdateNoValueChangeSucceeded", "7s", "5m", "1 of 2 SecretSync(s) not in sync",
		"some last checks unknown: the metrics of " + metrics.URL + " name no check of them"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if code != 1 {
		t.Errorf("status exit code %d, want 1 (one SecretSync not in sync)", code)
	}
	checked = []string{"db", "web"}
	out, _ = kubectl(t, "--kubeconfig", kubeconfig, "status", "-A", "-o", "json", "--metrics-url", metrics.URL)
	var entries []statusEntry
	if err := json.Unmarshal([]byte(strings.Split(out, "\n1 of 2")[0]), &entries); err != nil || len(entries) != 2 || entries[0].Items[0].Cause != "object-disabled" ||
		entries[0].LastCheck == nil || time.Since(*entries[0].LastCheck) > time.Minute || entries[0].LastSync != nil {
		t.Errorf("status -o json: %v %+v\n%s", err, entries, out)
	}
	out, _ = kubectl(t, "--kubeconfig", kubeconfig, "status", "-n", "payments")
	if want := "last checks unknown: reading the controller's metrics through Service kvsync-system/kvsync-metrics:metrics (--metrics-service)"; !strings.Contains(out, want) {
		t.Errorf("status without the controller's metrics Service lacks %q:\n%s", want, out)
	}
	if _, code := kubectl(t, "--kubeconfig", kubeconfig, "status", "-n", "payments", "--metrics-service", "kvsync-metrics"); code != 1 {
		t.Errorf("a malformed --metrics-service fails status: exit code %d, want 1 (only the last checks are unknown)", code)
	}

	// plan --from-cluster: each of the two SecretSyncs reads the class's
	// one object in a round of the cluster's checks.
	out, code = kubectl(t, "--kubeconfig", kubeconfig, "plan", "--from-cluster", "--clusters", "5000", "-o", "json")
	var plan fleetPlan
	if err := json.Unmarshal([]byte(out), &plan); err != nil || code != 0 || len(plan.Vaults) != 1 || plan.Vaults[0].Vault != "kv-payments" ||
		plan.Vaults[0].RequestsPerRound != 10000 || plan.Vaults[0].SmallestJitterSeconds == nil || *plan.Vaults[0].SmallestJitterSeconds != 27 {
		t.Errorf("plan --from-cluster: %v, exit %d:\n%s", err, code, out)
	}

	out, code = kubectl(t, "--kubeconfig", kubeconfig, "doctor", "db", "-n", "payments", "--network=false")
	t.Logf("kubectl kvsync doctor db -n payments:\n%s", out)
	for _, want := range []string{"SecretSync payments/db", "Last check", "unknown", "Cause", "object-disabled", "Checks", `"kv" reads key vault "kv-payments"`,
		`"workload" does not exist`, "Next steps", "az keyvault secret set-attributes --vault-name kv-payments --name db-password --enabled true"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor lacks %q:\n%s", want, out)
		}
	}
	if code != 1 {
		t.Errorf("doctor exit code %d, want 1", code)
	}
	out, code = kubectl(t, "--kubeconfig", kubeconfig, "doctor", "web", "-n", "payments", "--network=false", "-o", "yaml")
	if code != 0 || !strings.Contains(out, "id: synced") {
		t.Errorf("doctor of a synced SecretSync (%d):\n%s", code, out)
	}
	out, _ = kubectl(t, "--kubeconfig", kubeconfig, "doctor", "web", "-n", "payments", "--network=false", "--metrics-url", metrics.URL)
	for _, want := range []string{"Last check", "7s ago", "In sync since", "5m ago"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor of a synced SecretSync lacks %q:\n%s", want, out)
		}
	}
	out, code = kubectl(t, "--kubeconfig", kubeconfig, "doctor", "nope", "-n", "payments")
	if code != 1 || !strings.Contains(out, "secretsync-missing") {
		t.Errorf("doctor of a missing SecretSync (%d):\n%s", code, out)
	}
	if _, code := kubectl(t, "--kubeconfig", "/does/not/exist", "status"); code != 2 {
		t.Errorf("a missing kubeconfig: exit code %d, want 2", code)
	}
}
