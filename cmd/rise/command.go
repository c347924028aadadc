package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// A command is one rise subcommand. Each lives in its own file and registers
// itself from init.
type command struct {
	name    string
	summary string // one line for "rise help"
	usage   string // the synopsis line, after "rise NAME"
	help    string // what "rise help NAME" prints after the flags: details and an example
	// noArgs makes any argument after the flags a usage error, reported
	// before run is called.
	noArgs bool
	// run executes the command. setFlags, when set, declares the flags first.
	setFlags func(fs *flag.FlagSet)
	run      func(ctx context.Context, env *env, fs *flag.FlagSet) error
}

// env is what a command may touch: its output streams.
type env struct {
	stdout, stderr io.Writer
}

var commands = map[string]*command{}

func register(c *command) {
	if commands[c.name] != nil {
		panic("rise: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// usageError marks a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// run executes the command line and returns the exit status: 0 on success,
// 1 on a runtime failure, 2 on a usage error. Errors are one line on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		printOverview(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		name = "help"
	case "-version", "--version":
		name = "version"
	}
	c := commands[name]
	if c == nil {
		fmt.Fprintf(stderr, "rise: unknown command %q (run 'rise help' for the list)\n", name)
		return 2
	}
	fs := flag.NewFlagSet("rise "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if c.setFlags != nil {
		c.setFlags(fs)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommandHelp(stdout, c)
			return 0
		}
		fmt.Fprintf(stderr, "rise %s: %v (run 'rise help %s')\n", name, err, name)
		return 2
	}
	err := c.exec(ctx, e, fs)
	if err == nil {
		return 0
	}
	msg := strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "rise %s: %s (run 'rise help %s')\n", name, msg, name)
		return 2
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		// A command may say what was kept ("interrupted; ... --resume");
		// the context's own "context canceled" adds nothing.
		msg = strings.TrimSuffix(msg, ": "+ctx.Err().Error())
		if !strings.HasPrefix(msg, "interrupted") {
			msg = "interrupted"
		}
		fmt.Fprintf(stderr, "rise %s: %s\n", name, msg)
		return 1
	}
	fmt.Fprintf(stderr, "rise %s: %s\n", name, msg)
	return 1
}

// exec runs the command on its parsed flags, after checking that a command
// without arguments was given none.
func (c *command) exec(ctx context.Context, e *env, fs *flag.FlagSet) error {
	if c.noArgs && fs.NArg() > 0 {
		return usagef("expected no arguments, found %q", fs.Arg(0))
	}
	return c.run(ctx, e, fs)
}

func printOverview(w io.Writer) {
	fmt.Fprint(w, "rise finds and steers reasoning behaviours in language models with sparse autoencoders.\n\nUsage:\n\n\trise COMMAND [flags]\n\nCommands:\n\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "\t%-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprint(w, "\nRun 'rise help COMMAND' for a command's flags and an example.\n")
}

func printCommandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: rise %s %s\n\n%s\n", c.name, c.usage, c.summary)
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	if c.setFlags != nil {
		c.setFlags(fs)
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprint(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	}
}

func init() {
	register(&command{
		name:    "help",
		summary: "show the commands, or one command's flags and an example",
		usage:   "[COMMAND]",
		help:    "Example:\n\n\trise help synth",
		run: func(_ context.Context, e *env, fs *flag.FlagSet) error {
			switch fs.NArg() {
			case 0:
				printOverview(e.stdout)
				return nil
			case 1:
				c := commands[fs.Arg(0)]
				if c == nil {
					return usagef("unknown command %q", fs.Arg(0))
				}
				printCommandHelp(e.stdout, c)
				return nil
			}
			return usagef("expected at most one command name, found %d arguments", fs.NArg())
		},
	})
}
