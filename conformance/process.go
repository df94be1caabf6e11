package conformance

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// restartDelay is how long a Process that exited waits before it starts
// again.
const restartDelay = 500 * time.Millisecond

// stopTimeout is how long Stop and Terminate wait after SIGTERM before they
// kill.
const stopTimeout = 15 * time.Second

// Process is a binary the external environment runs. It is kept running as
// a kubelet keeps a container running: whenever it exits, for whatever
// reason, it starts again after restartDelay, with the same flags, until
// Stop. Exits the harness did not cause (Kill, Terminate) are counted as
// crashes.
type Process struct {
	// Name is the binary's name, e.g. kvsync-controller.
	Name string

	path      string
	env, args []string
	log       io.Writer
	// metrics is the process's metrics endpoint, if it serves one.
	metrics string

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the running instance exits
	expected bool          // the running instance is being killed on purpose
	starts   int
	crashes  []string
	quit     chan struct{}
	done     chan struct{} // closed when supervision ends
}

// startProcess starts path with the given environment and flags, output to
// log, and supervises it.
func startProcess(log io.Writer, path, metrics string, env []string, args ...string) (*Process, error) {
	p := &Process{Name: filepath.Base(path), path: path, env: env, args: args, log: log, metrics: metrics,
		quit: make(chan struct{}), done: make(chan struct{})}
	p.mu.Lock()
	err := p.startLocked()
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	go p.supervise()
	return p, nil
}

func (p *Process) startLocked() error {
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, p.env...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	// A process group of its own: a terminal's Ctrl-C reaches the harness
	// (make sim), which stops its processes in order, and not each of them
	// at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", p.Name, err)
	}
	p.cmd, p.exited, p.expected = cmd, make(chan struct{}), false
	p.starts++
	return nil
}

// supervise waits for each instance to exit and starts the next one.
func (p *Process) supervise() {
	defer close(p.done)
	for {
		p.mu.Lock()
		cmd, exited := p.cmd, p.exited
		p.mu.Unlock()
		err := cmd.Wait()
		p.mu.Lock()
		if !p.expected {
			p.crashes = append(p.crashes, fmt.Sprintf("%s exited: %v", p.Name, err))
		}
		close(exited)
		p.mu.Unlock()
		select {
		case <-p.quit:
			return
		case <-time.After(restartDelay):
		}
		p.mu.Lock()
		select {
		case <-p.quit:
			p.mu.Unlock()
			return
		default:
		}
		err = p.startLocked()
		p.mu.Unlock()
		if err != nil {
			p.mu.Lock()
			p.crashes = append(p.crashes, err.Error())
			p.mu.Unlock()
			return
		}
	}
}

// Kill kills the running instance with SIGKILL, as an OOM kill or a node
// failure does, and returns once it has exited; it starts again after
// restartDelay.
func (p *Process) Kill() error {
	return p.signal(syscall.SIGKILL)
}

// Terminate stops the running instance with SIGTERM, as a rolling update
// does, killing it after stopTimeout, and returns once it has exited; it
// starts again after restartDelay.
func (p *Process) Terminate() error {
	return p.signal(syscall.SIGTERM)
}

func (p *Process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	select {
	case <-exited:
		p.mu.Unlock()
		return fmt.Errorf("%s is not running", p.Name)
	default:
	}
	p.expected = true
	p.mu.Unlock()
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signalling %s: %w", p.Name, err)
	}
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-exited
	}
	return nil
}

// Stop stops the process for good: SIGTERM, then SIGKILL after
// stopTimeout. It is safe to call more than once.
func (p *Process) Stop() error {
	p.mu.Lock()
	select {
	case <-p.quit:
		p.mu.Unlock()
		<-p.done
		return nil
	default:
	}
	close(p.quit)
	p.expected = true
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
	}
	<-p.done
	return nil
}

// Starts returns how many times the process has started.
func (p *Process) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// Crashes describes the exits the harness did not cause.
func (p *Process) Crashes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string{}, p.crashes...)
}

// MetricsURL is the process's metrics endpoint, empty if it serves none.
func (p *Process) MetricsURL() string { return p.URL("/metrics") }

// URL is path on the process's HTTP endpoint (the one that serves its
// metrics, and its health where it serves that too); empty if it has none.
func (p *Process) URL(path string) string {
	if p.metrics == "" {
		return ""
	}
	return "http://" + p.metrics + path
}

// Metrics returns the running instance's metrics in text form.
func (p *Process) Metrics() (string, error) {
	if p.metrics == "" {
		return "", fmt.Errorf("%s serves no metrics", p.Name)
	}
	return httpGet(p.MetricsURL())
}
