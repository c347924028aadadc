// Command rise is a workbench for finding and steering reasoning behaviours in
// language models with sparse autoencoders. Run "rise help" for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first Ctrl-C or SIGTERM cancels ctx and the command winds down,
	// saving what it can; after it, the signals take their default action
	// again, so a second one ends the process whatever it is waiting for.
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
