package ship

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
)

// CheckStaticELF returns nil when r is an ELF executable that needs no dynamic loader and no shared
// library, which is what a distroless/static image (no libc, no ld.so) can run: no PT_INTERP program
// header and no DT_NEEDED entry. A Go binary built with CGO on links libc and fails this.
func CheckStaticELF(r io.ReaderAt) error {
	f, err := elf.NewFile(r)
	if err != nil {
		return fmt.Errorf("expected an ELF executable: %w", err)
	}
	defer f.Close()
	var problems []error
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			problems = append(problems, errors.New("it has a PT_INTERP program header (it needs a dynamic loader)"))
			break
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("reading the dynamic section: %w", err)
	}
	if len(libs) > 0 {
		problems = append(problems, fmt.Errorf("it needs shared libraries (DT_NEEDED %v)", libs))
	}
	if len(problems) > 0 {
		return fmt.Errorf("expected a static executable: %w", errors.Join(problems...))
	}
	return nil
}
