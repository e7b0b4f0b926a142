// Command checkmanifest decodes a krew plugin manifest strictly into krew's own types
// (sigs.k8s.io/krew/pkg/index) and checks the krew-index rules against the archives it names:
//
//	checkmanifest -manifest krew/dgdr.yaml -archives dist
//
// krew's validator decodes leniently (unknown fields pass) and, without downloading, cannot compare
// a platform's sha256 with its archive; this does both, offline. On success it prints a JSON summary
// (name, version, and per platform os, arch, archive, bin, files) for the caller to compare with
// what it built; on failure it prints one problem per line to stderr and exits 1.
package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/version"
	"sigs.k8s.io/krew/pkg/constants"
	"sigs.k8s.io/krew/pkg/index"
	"sigs.k8s.io/yaml"
)

var (
	pluginName = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	sha256Hex  = regexp.MustCompile(`^[a-f0-9]{64}$`)
)

// The krew-index bot asks for a short description of about 50 characters and a description
// wrapped at 80 columns.
const (
	maxShortDescription = 50
	maxDescriptionWidth = 80
)

type platformSummary struct {
	OS      string   `json:"os"`
	Arch    string   `json:"arch"`
	URI     string   `json:"uri"`
	Archive string   `json:"archive"`
	SHA256  string   `json:"sha256"`
	Bin     string   `json:"bin"`
	Files   []string `json:"files"`
}

type summary struct {
	Name      string            `json:"name"`
	Version   string            `json:"version"`
	Platforms []platformSummary `json:"platforms"`
}

func main() {
	manifest := flag.String("manifest", "", "krew manifest to check (its file name must be <plugin>.yaml)")
	archives := flag.String("archives", "", "directory holding the archive each platform's uri names")
	flag.Parse()
	if *manifest == "" || *archives == "" {
		fmt.Fprintln(os.Stderr, "usage: checkmanifest -manifest FILE.yaml -archives DIR")
		os.Exit(2)
	}
	s, problems := check(*manifest, *archives)
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, p)
		}
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func check(manifest, archives string) (summary, []string) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	data, err := os.ReadFile(manifest)
	if err != nil {
		return summary{}, []string{err.Error()}
	}
	var p index.Plugin
	// Strict: an unknown or misspelt field is an error here, though krew itself would ignore it.
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		return summary{}, []string{fmt.Sprintf("decoding %s strictly into krew's index.Plugin: %v", manifest, err)}
	}

	file := filepath.Base(manifest)
	stem, ok := strings.CutSuffix(file, constants.ManifestExtension)
	if !ok {
		bad("file name %q: expected the %s extension", file, constants.ManifestExtension)
	}
	if p.APIVersion != constants.CurrentAPIVersion {
		bad("apiVersion %q: expected %q", p.APIVersion, constants.CurrentAPIVersion)
	}
	if p.Kind != constants.PluginKind {
		bad("kind %q: expected %q", p.Kind, constants.PluginKind)
	}
	if p.Name != stem {
		bad("metadata.name %q: expected the file name without %s, %q", p.Name, constants.ManifestExtension, stem)
	}
	if !pluginName.MatchString(p.Name) {
		bad("metadata.name %q: expected lowercase words joined by hyphens", p.Name)
	}
	if v, ok := strings.CutPrefix(p.Spec.Version, "v"); !ok {
		bad("spec.version %q: expected a leading \"v\"", p.Spec.Version)
	} else if _, err := version.ParseSemantic(v); err != nil {
		bad("spec.version %q: expected a semantic version: %v", p.Spec.Version, err)
	}
	if u, err := url.Parse(p.Spec.Homepage); err != nil || u.Scheme != "https" || u.Host == "" {
		bad("spec.homepage %q: expected an https URL", p.Spec.Homepage)
	}
	switch sd := p.Spec.ShortDescription; {
	case strings.TrimSpace(sd) == "":
		bad("spec.shortDescription: expected a one-line description")
	case strings.ContainsAny(sd, "\r\n"):
		bad("spec.shortDescription %q: expected a single line", sd)
	case len(sd) > maxShortDescription:
		bad("spec.shortDescription %q: expected at most %d characters, got %d", sd, maxShortDescription, len(sd))
	}
	if strings.TrimSpace(p.Spec.Description) == "" {
		bad("spec.description: expected a description")
	}
	for i, line := range strings.Split(p.Spec.Description, "\n") {
		if len(line) > maxDescriptionWidth {
			bad("spec.description line %d: expected at most %d columns, got %d", i+1, maxDescriptionWidth, len(line))
		}
	}
	if len(p.Spec.Platforms) == 0 {
		bad("spec.platforms: expected at least one platform")
	}

	s := summary{Name: p.Name, Version: p.Spec.Version}
	seen := map[string]int{}
	for i, pl := range p.Spec.Platforms {
		at := fmt.Sprintf("spec.platforms[%d]", i)
		ps := platformSummary{URI: pl.URI, SHA256: pl.Sha256, Bin: pl.Bin}
		switch sel := pl.Selector; {
		case sel == nil:
			bad("%s.selector: expected matchLabels with os and arch", at)
		case len(sel.MatchExpressions) > 0:
			bad("%s.selector: expected matchLabels only, not matchExpressions", at)
		default:
			ps.OS, ps.Arch = sel.MatchLabels["os"], sel.MatchLabels["arch"]
			if ps.OS == "" || ps.Arch == "" || len(sel.MatchLabels) != 2 {
				bad("%s.selector.matchLabels %v: expected exactly the keys os and arch", at, sel.MatchLabels)
			}
		}
		if ps.OS != "" && ps.Arch != "" {
			key := ps.OS + "/" + ps.Arch
			if j, dup := seen[key]; dup {
				bad("%s.selector: selects %s, as spec.platforms[%d] already does", at, key, j)
			}
			seen[key] = i
		}
		if pl.Bin == "" {
			bad("%s.bin: expected the plugin's executable inside the archive", at)
		} else if ps.OS == "windows" && !strings.HasSuffix(pl.Bin, ".exe") {
			bad("%s.bin %q: expected a .exe name on windows", at, pl.Bin)
		}
		if pl.Files != nil {
			bad("%s.files: expected none, so that krew installs everything in the archive (binary and LICENSE)", at)
		}
		if !sha256Hex.MatchString(pl.Sha256) {
			bad("%s.sha256 %q: expected 64 lowercase hex digits", at, pl.Sha256)
		}
		u, err := url.Parse(pl.URI)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			bad("%s.uri %q: expected an https URL", at, pl.URI)
			s.Platforms = append(s.Platforms, ps)
			continue
		}
		if !strings.Contains(u.Path, "/"+p.Spec.Version+"/") {
			bad("%s.uri %q: expected the release path to name spec.version %s", at, pl.URI, p.Spec.Version)
		}
		ps.Archive = path.Base(u.Path)
		if !strings.HasSuffix(ps.Archive, ".tar.gz") {
			bad("%s.uri %q: expected a .tar.gz archive", at, pl.URI)
		}
		local := filepath.Join(archives, ps.Archive)
		sum, files, err := inspect(local)
		if err != nil {
			bad("%s: reading the archive the uri names: %v", at, err)
			s.Platforms = append(s.Platforms, ps)
			continue
		}
		ps.Files = files
		if sum != pl.Sha256 {
			bad("%s.sha256 %q: expected the sha256 of %s, %s", at, pl.Sha256, local, sum)
		}
		if !contains(files, pl.Bin) {
			bad("%s.bin %q: expected it in %s, which holds %v", at, pl.Bin, ps.Archive, files)
		}
		if !hasLicense(files) {
			bad("%s: expected a LICENSE file in %s (krew-index requires one among the installed files), got %v", at, ps.Archive, files)
		}
		s.Platforms = append(s.Platforms, ps)
	}
	return s, problems
}

// inspect hashes a .tar.gz and lists its regular files.
func inspect(archive string) (string, []string, error) {
	f, err := os.Open(archive)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", nil, err
	}
	gz, err := gzip.NewReader(f)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", archive, err)
	}
	var files []string
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", archive, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			files = append(files, path.Clean(hdr.Name))
		}
	}
	return hex.EncodeToString(h.Sum(nil)), files, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// hasLicense mirrors the names krew-index accepts as a license file.
func hasLicense(files []string) bool {
	for _, f := range files {
		switch strings.ToLower(path.Base(f)) {
		case "license", "license.txt", "license.md", "licenses", "licenses.txt", "licenses.md", "copying", "copying.txt":
			return true
		}
	}
	return false
}
