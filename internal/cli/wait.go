package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/kubectl/pkg/util/term"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// Intervals of --wait: how often the DGDR is read, and how often the spinner turns on a terminal.
const (
	pollInterval = 2 * time.Second
	spinInterval = 100 * time.Millisecond
)

// waiter follows a DGDR through its phases.
type waiter struct {
	cluster  *cluster
	out      io.Writer
	terminal bool
	poll     time.Duration
	now      func() time.Time
	// width is the terminal's: the spinner line is cut to it so that redrawing in place works.
	width int
}

// newWaiter writes progress to out: a spinner line redrawn in place when out is a terminal, plain
// timestamped lines otherwise (logs, CI).
func newWaiter(c *cluster, out io.Writer) waiter {
	w := waiter{cluster: c, out: out, terminal: printers.IsTerminal(out), poll: pollInterval, now: time.Now, width: 80}
	if f, ok := out.(*os.File); ok && w.terminal {
		if size := term.GetSize(f.Fd()); size != nil && size.Width > 0 {
			w.width = int(size.Width)
		}
	}
	return w
}

// done reports whether the DGDR's phase ends the wait: Deployed, Failed, or Ready unless the profiler
// goes on to deploy it (autoApply, and the selected configuration meets the SLA: one that misses it is
// left for the user to promote).
func done(d *v1alpha1.DynamoGraphDeploymentRequest) bool {
	switch d.Status.Phase {
	case v1alpha1.PhaseReady:
		pr := d.Status.ProfilingResults
		return !d.Spec.AutoApply || pr == nil || pr.SelectedConfig == nil || !pr.SelectedConfig.MeetsSLA
	case v1alpha1.PhaseDeployed, v1alpha1.PhaseFailed:
		return true
	}
	return false
}

// wait follows the DGDR until done or timeout. While the DGDR is Deploying it records Deployed itself once
// the DGD is ready (as `status` does). A Failed DGDR is an error.
func (w waiter) wait(ctx context.Context, name string, timeout time.Duration) (*v1alpha1.DynamoGraphDeploymentRequest, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p := &progress{w: w.out, terminal: w.terminal, name: name, width: w.width}
	poll := time.NewTicker(w.poll)
	defer poll.Stop()
	var spin <-chan time.Time
	if w.terminal {
		t := time.NewTicker(spinInterval)
		defer t.Stop()
		spin = t.C
	}

	var last *v1alpha1.DynamoGraphDeploymentRequest
	for {
		d, err := w.check(ctx, name, p)
		if err != nil {
			p.finish(w.now(), "")
			return nil, err
		}
		last = d
		if done(d) {
			return d, w.result(d, p)
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				phase := phaseOf(last)
				p.finish(w.now(), "")
				err := fmt.Errorf("timed out after %s waiting for DGDR %s, still %s", timeout, name, phase)
				if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
					err = fmt.Errorf("stopped waiting for DGDR %s, still %s: %w", name, phase, ctx.Err())
				}
				return last, WithHint(err, "it goes on in the cluster; follow it with `kubectl dgdr status %s%s`", name, nsFlag(w.cluster.namespace))
			case <-spin:
				p.redraw(w.now())
			case <-poll.C:
				break wait
			}
		}
	}
}

// check reads the DGDR once, records a ready DGD, and reports the phase.
func (w waiter) check(ctx context.Context, name string, p *progress) (*v1alpha1.DynamoGraphDeploymentRequest, error) {
	d, err := w.cluster.getDGDR(ctx, name)
	if err != nil {
		return nil, err
	}
	d, dgd, warn, err := w.cluster.observeDeployment(ctx, d)
	if err != nil {
		return nil, err
	}
	// A dead profiling Job ends the wait at once, with its cause.
	if d.Status.Phase == "" || d.Status.Phase == v1alpha1.PhasePending || d.Status.Phase == v1alpha1.PhaseProfiling {
		job, err := w.cluster.profilingJob(ctx, d)
		if err != nil {
			return nil, err
		}
		var death *lifecycle.JobDeath
		d, death, err = w.cluster.observeJob(ctx, d, job, w.now())
		if err != nil && death == nil {
			return nil, err
		}
		// err with a death is a refused status write: the death below is the answer either way.
		if death != nil && d.Status.Phase != v1alpha1.PhaseFailed {
			// Not recorded (a user who may not write the status): the cause is the answer all the same.
			return nil, WithHint(fmt.Errorf("DGDR %s failed: %s: %s", name, death.Reason, oneLine(death.Message)),
				"`kubectl dgdr status %s%s` shows the Job and its events", name, nsFlag(d.Namespace))
		}
	}
	msg := latestMessage(d)
	if warn != "" {
		msg = warn
	} else if dgd != nil && !dgd.Ready {
		msg = "DGD " + d.Status.DGDName + ": " + dgd.Message
	}
	phase := phaseOf(d)
	p.observe(w.now(), string(phase), msg)
	return d, nil
}

// result ends the progress display with the outcome.
func (w waiter) result(d *v1alpha1.DynamoGraphDeploymentRequest, p *progress) error {
	ns := nsFlag(d.Namespace)
	if d.Status.Phase == v1alpha1.PhaseFailed {
		p.finish(w.now(), "")
		msg := failureMessage(d)
		if msg == "" {
			msg = "no condition says why"
		}
		return WithHint(fmt.Errorf("DGDR %s failed: %s", d.Name, msg),
			"`kubectl dgdr status %s%s` shows the conditions and events, `kubectl dgdr logs %s%s` the profiler's output", d.Name, ns, d.Name, ns)
	}
	p.finish(w.now(), fmt.Sprintf("%s is %s. Next: %s", d.Name, d.Status.Phase, nextStep(d, nil, nil)))
	return nil
}

// progress renders the phases. On a terminal it keeps one line, "⠹ NAME PHASE (12s) message", redrawn
// in place, and leaves a "✓ PHASE (12s)" line behind when the phase changes. Elsewhere it prints one
// timestamped line per change of phase or message.
type progress struct {
	w        io.Writer
	terminal bool
	name     string
	width    int

	phase, msg string
	since      time.Time
	frame      int
	drawn      bool
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// observe records the current phase and message.
func (p *progress) observe(now time.Time, phase, msg string) {
	if phase == p.phase && msg == p.msg {
		if p.terminal {
			p.redraw(now)
		}
		return
	}
	if !p.terminal {
		line := fmt.Sprintf("%s %s %s", now.UTC().Format(time.RFC3339), p.name, phase)
		if msg != "" {
			line += ": " + msg
		}
		fmt.Fprintln(p.w, line)
		p.phase, p.msg = phase, msg
		return
	}
	if phase != p.phase && p.phase != "" {
		p.clear()
		fmt.Fprintf(p.w, "✓ %s %s (%s)\n", p.name, p.phase, now.Sub(p.since).Round(time.Second))
	}
	if phase != p.phase {
		p.since = now
	}
	p.phase, p.msg = phase, msg
	p.redraw(now)
}

// redraw turns the spinner (terminal only).
func (p *progress) redraw(now time.Time) {
	if !p.terminal || p.phase == "" {
		return
	}
	p.clear()
	line := fmt.Sprintf("%s %s %s (%s)", spinner[p.frame%len(spinner)], p.name, p.phase, now.Sub(p.since).Round(time.Second))
	if p.msg != "" {
		line += " " + p.msg
	}
	if r := []rune(line); p.width > 1 && len(r) >= p.width {
		line = string(r[:p.width-2]) + "…"
	}
	fmt.Fprint(p.w, line)
	p.frame++
	p.drawn = true
}

// clear erases the spinner line.
func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

// finish removes the spinner and prints the final line, if any.
func (p *progress) finish(now time.Time, final string) {
	if p.terminal {
		p.clear()
		if p.phase != "" && final != "" {
			fmt.Fprintf(p.w, "✓ %s %s (%s)\n", p.name, p.phase, now.Sub(p.since).Round(time.Second))
		}
	}
	if final != "" {
		if !p.terminal {
			final = now.UTC().Format(time.RFC3339) + " " + final
		}
		fmt.Fprintln(p.w, final)
	}
}
