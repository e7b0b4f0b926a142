// Command simengine serves internal/simengine (a simulated OpenAI-compatible engine) on a port: the
// workers and frontends that test/e2e's stand-in for the Dynamo operator runs as pods. Test support
// only; never shipped.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dgdr-dev/dgdr/internal/simengine"
)

func main() {
	var (
		addr = flag.String("addr", ":8000", "listen address")
		cfg  simengine.Config
	)
	flag.StringVar(&cfg.Model, "model", "sim-model", "served model name")
	flag.Float64Var(&cfg.PrefillBaseMs, "prefill-base-ms", 20, "prefill time before the first token, ms")
	flag.Float64Var(&cfg.PrefillMsPerToken, "prefill-ms-per-token", 0.01, "prefill time per prompt token, ms")
	flag.Float64Var(&cfg.DecodeBaseMs, "decode-base-ms", 5, "time per output token, ms")
	flag.Float64Var(&cfg.DecodeMsPerSeq, "decode-ms-per-seq", 0.05, "time per output token per running sequence, ms")
	flag.IntVar(&cfg.MaxBatch, "max-batch", 0, "requests running at once (0: unlimited)")
	flag.Float64Var(&cfg.TokensPerWord, "tokens-per-word", 1, "prompt tokens per word")
	flag.Parse()

	srv := &http.Server{Addr: *addr, Handler: simengine.New(cfg), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "simengine: %v\n", err)
		os.Exit(1)
	}
}
