package main

import (
	"context"
	"flag"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/rise-interp/rise/web"
)

func init() {
	var (
		datas, saes stringList
		hosts       stringList
		jobLimits   map[string]int
		addr, work  string
		token       string
		mf          modelFlags
		open        bool
		seed        uint64
	)
	register(&command{
		name:    "serve",
		noArgs:  true,
		summary: "serve the workbench in a browser: datasets, training, the atlas, features, behaviours, steering",
		usage:   "[--data DIR ...] [--sae SAE_DIR ...] [--model PATH [--tokenizer PATH]] [--addr 127.0.0.1:8080] [--work DIR] [--jobs KIND=N,...] [--allow-host NAME] [--open]",
		help: `Serves the rise workbench: a browser UI over activation dumps and SAEs, and
the JSON API behind it (web/API.md). Pages: datasets and their steps and
traces (/), training with live curves (/train), the decoder atlas (/atlas),
feature pages (/feature/SAE/ID), behaviours and their vectors (/behaviours)
and steering (/steer).

With no --data and no --sae it serves the built-in demo. In a checkout of
rise (where testdata/tinyreason holds the project's tiny reasoning model) the
demo is the whole RISE loop on that model: synthetic reasoning traces run
through it and recorded at their step delimiters after blocks 1, 2 and 3,
one TopK SAE per layer trained live (watch them on /train), their atlases
and the separation by layer, and the steering page on the model. Elsewhere
it is the planted dump of rise synth with a TopK SAE trained on it. Both are
written to the user's cache on first run and read back later. "make run"
runs this.

--model attaches a model (a llama2.c checkpoint, or a Hugging Face Llama or
Qwen2 directory) that the steering page runs natively: DEFAULT and STEERED
generations side by side, with SAE features, behaviour vectors or uploaded
.npy vectors. The vectors must come from the same model's residual stream.

Each --sae is tied to the --data dump it was trained on (its cfg.json names
it) or else to the first dump with a layer of its hook layer and width; its
atlas and feature statistics are computed in the background on start and
kept in --work, as are SAEs trained from the browser. A restart reads
--work back: SAEs trained from the browser are listed again, and a
training cut short (cancelled, Ctrl-C, or the process killed) is listed as
interrupted, to resume from its checkpoint with the Resume button.

The server listens on 127.0.0.1 unless --addr names another host; then
--token is required, and every request must carry it (a browser opens the
workbench once with ?token=TOKEN and keeps it in a cookie). On loopback it
answers only requests addressed to localhost, 127.0.0.1 or [::1] with its
port, so that no other site's name can lead a browser to it; --allow-host
adds a name (a tunnel's, localhost:9000 say). Requests that change
something must be JSON from the workbench's own pages. Jobs beyond --jobs
wait in a queue. It serves only its embedded pages and what the API
computes from the data given, and stops cleanly on Ctrl-C, cancelling
running jobs.

Examples:

	rise serve
	rise serve --data S --sae S.topk --addr 127.0.0.1:9000 --open`,
		setFlags: func(fs *flag.FlagSet) {
			datas, saes, hosts, jobLimits = nil, nil, nil, nil
			fs.Var(&datas, "data", "an activation dump to serve (repeatable)")
			fs.Var(&saes, "sae", "an SAE to serve (SAELens or sparsify directory, or Gemma Scope params.npz; repeatable)")
			fs.StringVar(&addr, "addr", "127.0.0.1:8080", "HOST:PORT to listen on (port 0 picks a free one)")
			fs.StringVar(&work, "work", "", "where SAEs trained from the browser and analyses are kept (default .rise/work, or the demo's cache)")
			fs.BoolVar(&open, "open", false, "open the workbench in the default browser")
			fs.StringVar(&token, "token", "", "an access token every request must carry (required when --addr is not a loopback address)")
			fs.Var(&hosts, "allow-host", "a further Host name (NAME or NAME:PORT) that reaches the server, such as a tunnel's; repeatable")
			fs.Func("jobs", "how many jobs of each kind run at once, the rest queued (default train=1,atlas=1,sweep=1,steer=2)", func(s string) error {
				l, err := web.ParseJobLimits(s)
				jobLimits = l
				return err
			})
			fs.Uint64Var(&seed, "seed", 1, "seed of the atlases and sweeps")
			fs.StringVar(&mf.model, "model", "", "a model for the steering page: a llama2.c checkpoint or a Hugging Face Llama/Qwen2 directory")
			fs.StringVar(&mf.tokenizer, "tokenizer", "", "the model's tokenizer, when it is not beside the model")
			mf.setPrecision(fs)
			fs.StringVar(&mf.backend, "backend", "", "a backend server (rise-backend/1) that runs the model for the steering page")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet) error {
			if err := web.CheckAddr(addr); err != nil {
				return usagef("--addr: %v", err)
			}
			if !web.IsLoopback(addr) && token == "" {
				return usagef("--addr %s can be reached from other machines: give --token so that only those who have it get in", addr)
			}
			demo := len(datas) == 0 && len(saes) == 0
			if demo && mf.model == "" {
				// In a checkout, the demo runs the RISE loop on the tiny
				// reasoning model of testdata/tinyreason.
				if m, t, ok := web.FindTinyModel(); ok {
					mf.model, mf.tokenizer = m, t
				}
			}
			cfg := web.Config{Version: versionString(), Seed: seed, Demo: demo, Token: token, AllowedHosts: hosts, JobLimits: jobLimits}
			if mf.model != "" || mf.backend != "" {
				b, err := mf.load(ctx)
				if err != nil {
					return err
				}
				cfg.Backend = b
			}
			if work == "" {
				work = filepath.Join(".rise", "work")
				if demo {
					work = web.DefaultDemoDir()
					if mf.model != "" {
						var err error
						if work, err = web.ModelDemoDir(filepath.Dir(work), mf.model); err != nil {
							return err
						}
					}
				}
			}
			ws := &web.Workspace{Dir: work}
			srv := web.New(ws, cfg)
			defer srv.Close()
			if demo {
				fmt.Fprintf(e.stderr, "rise serve: the demo lives in %s\n", work)
				var err error
				if cfg.Backend != nil {
					bar := newProgress(e.stderr, "recording the model's traces")
					err = srv.SetupModelDemo(ctx, func(d, t int) { bar.update(int64(d), int64(t)) })
					bar.done()
				} else {
					_, err = srv.SetupDemo(ctx)
				}
				if err != nil {
					return fmt.Errorf("setting up the demo in %s: %w", work, err)
				}
			}
			for _, d := range datas {
				if _, err := ws.AddDataset(ctx, d, ""); err != nil {
					return err
				}
			}
			for _, p := range saes {
				m, err := ws.AddSAE(p)
				if err != nil {
					return err
				}
				srv.StartAnalysis(m)
			}
			// SAEs trained from the browser in earlier runs, and trainings
			// they left unfinished; what cannot be read back is said, not
			// skipped.
			if err := srv.Restore(); err != nil {
				fmt.Fprintf(e.stderr, "rise serve: reading back %s:\n%v\n", work, err)
			}
			l, err := web.Listen(addr)
			if err != nil {
				return usagef("--addr: %v", err)
			}
			url := "http://" + l.Addr().String() + "/"
			if token != "" {
				fmt.Fprintf(e.stdout, "rise workbench: %s (open %s?token=... once in each browser)\n", url, url)
			} else {
				fmt.Fprintf(e.stdout, "rise workbench: %s\n", url)
			}
			if demo {
				fmt.Fprintf(e.stdout, "the demo SAEs train on first run: watch them at %strain, then explore %satlas", url, url)
				if cfg.Backend != nil {
					fmt.Fprintf(e.stdout, " and steer the model at %ssteer", url)
				}
				fmt.Fprintln(e.stdout)
			}
			fmt.Fprintln(e.stdout, "Ctrl-C stops it.")
			if open {
				openBrowser(url)
			}
			return srv.Serve(ctx, l)
		},
	})
}

// openBrowser opens url in the desktop's browser, quietly doing nothing
// where there is none.
func openBrowser(url string) {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if cmd.Start() == nil {
		go cmd.Wait()
	}
}
