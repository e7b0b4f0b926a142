// Package toolutil holds what the performance-model tools share: finding testdata/, reading the
// calibration table, printing accuracy tables.
package toolutil

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dgdr-dev/dgdr/internal/calib"
	"github.com/dgdr-dev/dgdr/internal/repo"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// Testdata is the repository's testdata/ (found from the working directory), the tools' -testdata default.
func Testdata() string {
	dir, err := repo.Testdata()
	if err != nil {
		return "testdata"
	}
	return dir
}

// CalibrationFile is the measured serving table inside testdata/.
const CalibrationFile = "calibration/serving_measurements_train.csv"

// ReadCalibration parses the calibration table with the embedded model catalog.
func ReadCalibration(data string) ([]*profile.ServingRow, error) {
	f, err := os.Open(filepath.Join(data, CalibrationFile))
	if err != nil {
		return nil, fmt.Errorf("open the calibration table (run from inside the clone or pass -testdata): %w", err)
	}
	defer f.Close()
	_, rows, err := profile.ReadServingRows(f, profile.LookupModel)
	if err != nil {
		return nil, err
	}
	return calib.RowPointers(rows), nil
}

// PrintTable writes accuracy lines as a Markdown table under a title.
func PrintTable(w io.Writer, title string, lines []calib.AccuracyLine) {
	fmt.Fprintf(w, "\n%s\n\n", title)
	fmt.Fprintln(w, "| group | mode | rows | answered | TTFT median | TTFT p90 | ITL median | ITL p90 |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|")
	for _, l := range lines {
		fmt.Fprintf(w, "| %s | %s | %d | %.0f%% | %.1f%% | %.1f%% | %.1f%% | %.1f%% |\n", l.Backend, l.Mode, l.Rows,
			100*l.Coverage, 100*l.TTFTMedian, 100*l.TTFTP90, 100*l.ITLMedian, 100*l.ITLP90)
	}
}

// OnSystems keeps the results of rows measured on the given systems.
func OnSystems(res []calib.RowResult, systems ...string) []calib.RowResult {
	var out []calib.RowResult
	for _, r := range res {
		for _, s := range systems {
			if r.Row.Fields["system"] == s {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

// WriteRegion replaces what lies between the lines <!-- BEGIN name --> and <!-- END name --> of the
// file at path with body, keeping the markers and everything outside them.
func WriteRegion(path, name string, body []byte) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	begin, end := []byte("<!-- BEGIN "+name+" -->\n"), []byte("<!-- END "+name+" -->")
	i, j := bytes.Index(doc, begin), bytes.Index(doc, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s: expected the markers %q and %q in that order", path, bytes.TrimSpace(begin), end)
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(begin)])
	out.Write(bytes.TrimLeft(body, "\n"))
	if len(body) > 0 && body[len(body)-1] != '\n' {
		out.WriteByte('\n')
	}
	out.Write(doc[j:])
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
