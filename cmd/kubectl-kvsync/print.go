package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kvsync/kvsync/troubleshoot"
)

// ANSI colours, used only on a terminal.
const (
	red    = "\x1b[31m"
	green  = "\x1b[32m"
	yellow = "\x1b[33m"
	bold   = "\x1b[1m"
	reset  = "\x1b[0m"
)

// paint colours s when colour is on.
func (c *cli) paint(colour, s string) string {
	if !c.colour || s == "" {
		return s
	}
	return colour + s + reset
}

// result colours a check result or a reason by what it means.
func (c *cli) result(r string) string {
	switch r {
	case troubleshoot.OK:
		return c.paint(green, "ok")
	case troubleshoot.Fail:
		return c.paint(red, "FAIL")
	case troubleshoot.Warn:
		return c.paint(yellow, "warn")
	}
	return r
}

func (c *cli) reason(d troubleshoot.Diagnosis) string {
	switch {
	case d.Reason == "":
		return c.paint(yellow, "<none>")
	case d.Success:
		return c.paint(green, d.Reason)
	case d.Reason == "PartialSync":
		return c.paint(yellow, d.Reason)
	}
	return c.paint(red, d.Reason)
}

// encode writes v as JSON or YAML for -o.
func (c *cli) encode(v any) error {
	switch c.output {
	case "json":
		enc := json.NewEncoder(c.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		out, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = c.out.Write(out)
		return err
	}
	return fmt.Errorf("unknown output format %q", c.output)
}

// table aligns tab-separated rows.
func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 3, ' ', 0) }

// age renders a time as kubectl does: 5s, 3m, 2h, 4d.
// ago is "<age> ago", or none when t is nil.
func ago(t *time.Time, now time.Time, none string) string {
	if t == nil {
		return none
	}
	return ageOr(t, now, none) + " ago"
}

// ageOr is the age of t as kubectl prints ages, or none when t is nil.
func ageOr(t *time.Time, now time.Time, none string) string {
	if t == nil {
		return none
	}
	d := now.Sub(*t)
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// oneLine flattens s and cuts it to n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
