// Package flagenv reads a command's settings: each one a flag mirrored by
// an environment variable, with a default. A flag wins over the
// environment, which wins over the default; every bad value is reported at
// once, and --help prints every setting with its variable and default.
//
// It is written here rather than taken from a library because agentd needs
// two things the common ones do not do together: settings that have only an
// environment variable (secrets: a command line is visible to every process
// on the machine, so they get no flag, and their values are never echoed in
// an error), and one error that lists every bad setting with where its value
// came from.
package flagenv

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Option is one setting.
type Option struct {
	Flag    string // "" for a setting that only has an environment variable (a secret)
	Env     string
	Default string
	Arg     string // placeholder in the help; "BOOL" makes the flag take no value ("--json" is "--json=true")
	Usage   string
	// Repeat lets the flag be given more than once: its values are joined
	// with commas ("--variant a=b --variant c=d" is "a=b,c=d").
	Repeat bool
	Apply  func(v string) error
}

// UsageError is a mistake in the command line or the environment.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Parse applies each option's default, then its environment variable
// (getenv), then its flag (args), and reports every bad value at once as a
// *UsageError. With -h or --help it prints the help to stdout and returns
// flag.ErrHelp. cmd names the command in messages ("agentd serve").
func Parse(cmd, summary string, opts []Option, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	vals := map[string]*string{}
	for _, o := range opts {
		switch {
		case o.Flag == "":
		case o.Arg == "BOOL":
			v := new(string)
			vals[o.Flag] = v
			fs.BoolFunc(o.Flag, o.Usage, func(s string) error { *v = s; return nil })
		case o.Repeat:
			v := new(string)
			vals[o.Flag] = v
			fs.Func(o.Flag, o.Usage, func(s string) error {
				if *v != "" {
					s = *v + "," + s
				}
				*v = s
				return nil
			})
		default:
			vals[o.Flag] = fs.String(o.Flag, "", o.Usage)
		}
	}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		printHelp(stdout, cmd, summary, opts)
		return flag.ErrHelp
	}
	if err != nil {
		return &UsageError{fmt.Errorf("%v (see %s --help)", err, cmd)}
	}
	if fs.NArg() > 0 {
		return &UsageError{fmt.Errorf("unexpected argument %q (see %s --help)", fs.Arg(0), cmd)}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	for _, o := range opts {
		v, from := o.Default, "default"
		if e := getenv(o.Env); e != "" {
			v, from = e, o.Env
		}
		if o.Flag != "" && given[o.Flag] {
			v, from = *vals[o.Flag], "--"+o.Flag
		}
		if err := o.Apply(v); err != nil {
			if o.Flag == "" { // environment-only settings are secrets: never echo them
				err = errors.New("is invalid")
			}
			errs = append(errs, fmt.Errorf("%s (%s): %w", displayName(o), from, err))
		}
	}
	if len(errs) > 0 {
		return &UsageError{errors.Join(errs...)}
	}
	return nil
}

func displayName(o Option) string {
	if o.Flag == "" {
		return o.Env
	}
	return "--" + o.Flag
}

func printHelp(w io.Writer, cmd, summary string, opts []Option) {
	fmt.Fprintf(w, "Usage: %s [flags]\n\n%s\n\n", cmd, summary)
	fmt.Fprintln(w, "Flags, each with the environment variable it mirrors (a flag wins over the environment) and its default:")
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	var envOnly []Option
	for _, o := range opts {
		if o.Flag == "" {
			envOnly = append(envOnly, o)
			continue
		}
		def := o.Default
		if def == "" {
			def = "(none)"
		}
		fmt.Fprintf(tw, "  --%s %s\t%s\t%s\tdefault %s\n", o.Flag, o.Arg, o.Env, o.Usage, def)
	}
	tw.Flush()
	if len(envOnly) > 0 {
		fmt.Fprintln(w, "\nEnvironment only (secrets are never flags: the command line is visible to every process):")
		tw = tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
		sort.Slice(envOnly, func(i, j int) bool { return envOnly[i].Env < envOnly[j].Env })
		for _, o := range envOnly {
			fmt.Fprintf(tw, "  %s\t%s\n", o.Env, o.Usage)
		}
		tw.Flush()
	}
}

// NonEmpty refuses a blank value.
func NonEmpty(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("must not be empty")
	}
	return nil
}

// IntIn parses an integer from lo to hi.
func IntIn(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("want an integer from %d to %d, got %q", lo, hi, v)
	}
	return n, nil
}

// DurIn parses a duration from lo to hi.
func DurIn(v string, lo, hi time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d < lo || d > hi {
		return 0, fmt.Errorf("want a duration from %v to %v such as 8s or 2m, got %q", lo, hi, v)
	}
	return d, nil
}
