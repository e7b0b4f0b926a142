// Command dist builds the release archives of kubectl-dgdr, checksums.txt and the krew manifest
// (`make dist`), or only re-renders the manifest from archives already built (`make krew-manifest`).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/dgdr-dev/dgdr/internal/ship"
)

func main() {
	var o ship.Options
	var manifestOnly bool
	flag.StringVar(&o.Version, "version", "", "release version, a v-prefixed semver")
	flag.StringVar(&o.LDFlags, "ldflags", "", "go build -ldflags (the Makefile's LDFLAGS)")
	flag.StringVar(&o.Go, "go", "go", "go command")
	flag.StringVar(&o.OutDir, "out", "dist", "directory for the archives and checksums.txt")
	flag.StringVar(&o.License, "license", ship.LicenseFile, "license file put in every archive")
	flag.StringVar(&o.Template, "template", "krew/dgdr.yaml.tmpl", "krew manifest template")
	flag.StringVar(&o.Manifest, "manifest", "krew/dgdr.yaml", "rendered krew manifest")
	flag.BoolVar(&manifestOnly, "manifest-only", false, "only render the manifest from the archives in -out")
	flag.Parse()
	o.ModuleDir = "."
	o.Log = os.Stderr
	// SOURCE_DATE_EPOCH (reproducible-builds.org) pins the archives' file times; otherwise they are now.
	o.MTime = time.Now()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fail(fmt.Errorf("SOURCE_DATE_EPOCH %q: expected seconds since 1970: %w", s, err))
		}
		o.MTime = time.Unix(sec, 0)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if manifestOnly {
		arts, err := ship.Collect(o.OutDir, o.Version)
		if err == nil {
			err = ship.WriteManifest(o.Template, o.Manifest, o.Version, arts)
		}
		if err != nil {
			fail(err)
		}
		fmt.Fprintf(os.Stderr, "wrote %s for %s\n", o.Manifest, o.Version)
		return
	}
	if _, err := ship.Dist(ctx, o); err != nil {
		fail(err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s/*.tar.gz, %s/%s and %s for %s\n", o.OutDir, o.OutDir, ship.ChecksumsFile, o.Manifest, o.Version)
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "error: %v\n", err)
	os.Exit(1)
}
