package conformance

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/kvsync/kvsync/fakevault"
	"github.com/kvsync/kvsync/fakevault/entra"
)

// azureCLI runs the Azure CLI (az) against the fake, as an operator of the
// scenarios' tenant: through fakevault's CONNECT proxy, trusting its CA,
// with a configuration directory of its own, signed in at first use with a
// service principal the suite adds to the tenant.
type azureCLI struct {
	az  string
	env []string
	// login is the az login command line of the operator.
	login string

	loginOnce sync.Once
	loginErr  error
}

// AzureCLIEnv names the az the suite runs ($KVSYNC_AZ; the Makefile sets it
// to hack/azcli.sh's Azure CLI). When it is empty, az is looked up on PATH.
const AzureCLIEnv = "KVSYNC_AZ"

// lookAzureCLI finds the az to run: $KVSYNC_AZ, or az on PATH.
func lookAzureCLI() (string, error) {
	if az := os.Getenv(AzureCLIEnv); az != "" {
		return exec.LookPath(az)
	}
	return exec.LookPath("az")
}

// setAzureCLI lets AzureCLI run az commands through the fake's proxy, which
// fakeProxy makes reachable (its address, and its CA bundle's file); it
// leaves AzureCLI nil, and starts nothing, when there is no az (see
// lookAzureCLI).
func (e *Environment) setAzureCLI(dir string, fakeProxy func() (addr, caFile string, err error)) error {
	az, err := lookAzureCLI()
	if err != nil {
		return nil
	}
	proxy, caFile, err := fakeProxy()
	if err != nil {
		return err
	}
	operator := entra.Application{ClientID: uuid.NewString(), DisplayName: "kvsync-conformance-operator", ClientSecrets: []string{uuid.NewString()}}
	operator.ObjectID = operator.ClientID
	if err := e.World.AddApplication(operator); err != nil {
		return fmt.Errorf("adding the Azure CLI's operator to tenant %s: %w", Tenant, err)
	}
	cli := &azureCLI{az: az, env: []string{"HTTPS_PROXY=http://" + proxy, "REQUESTS_CA_BUNDLE=" + caFile,
		"AZURE_CONFIG_DIR=" + filepath.Join(dir, "azure-cli"), "AZURE_CORE_COLLECT_TELEMETRY=false", "AZURE_CORE_ONLY_SHOW_ERRORS=true"},
		login: fmt.Sprintf("az login --service-principal -u %s -p %s --tenant %s", operator.ClientID, operator.ClientSecrets[0], Tenant)}
	e.AzureCLI, e.Operator = cli.command, operator.ObjectID
	return nil
}

// command signs in once, then runs the az command line.
func (c *azureCLI) command(ctx context.Context, command string) (string, error) {
	c.loginOnce.Do(func() { _, c.loginErr = c.run(context.Background(), c.login) })
	if c.loginErr != nil {
		return "", fmt.Errorf("az login: %w", c.loginErr)
	}
	return c.run(ctx, command)
}

func (c *azureCLI) run(ctx context.Context, command string) (string, error) {
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Env = append(append(os.Environ(), c.env...), "PATH="+filepath.Dir(c.az)+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// serveProxy serves fake's CONNECT proxy, its tunnels opened by dial, on a
// local port for the life of the environment, and returns its address.
func (e *Environment) serveProxy(fake *fakevault.Server, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: fake.ProxyHandlerVia(dial), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	e.stops = append(e.stops, srv.Close)
	return lis.Addr().String(), nil
}

// azCommand reports whether a fix's command runs the Azure CLI.
func azCommand(command string) bool { return strings.HasPrefix(command, "az ") }
