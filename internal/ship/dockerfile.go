package ship

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"strings"
)

// Dockerfile is what the image tests read from ./Dockerfile: the stages and their instructions.
// There is no container engine in CI, so the tests rebuild what the Dockerfile's build stage builds
// and check the names the final stage provides against the manifests; this parser covers the subset
// of the syntax the project's Dockerfile uses and reports anything else as an error rather than guess.
type Dockerfile struct {
	// Args are the ARGs declared before the first FROM, with their defaults.
	Args   map[string]string
	Stages []Stage
}

// Stage is one FROM section.
type Stage struct {
	// Base is the FROM image; Name the AS name (empty when there is none).
	Base, Name   string
	Instructions []Instruction
}

// Instruction is one logical line: continuation lines joined, comments dropped.
type Instruction struct {
	Line int
	// Cmd is the instruction in upper case (RUN, COPY, ...).
	Cmd string
	// Flags are the leading --name[=value] options (--from=build, --mount=...).
	Flags []string
	// Args is the rest of the line.
	Args string
}

// ParseDockerfile reads a Dockerfile.
func ParseDockerfile(r io.Reader) (*Dockerfile, error) {
	d := &Dockerfile{Args: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	var logical strings.Builder
	start, n := 0, 0
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		// Comments (and parser directives) are whole lines, also inside a continuation.
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if logical.Len() == 0 {
			start = n
		}
		if body, cont := strings.CutSuffix(strings.TrimRight(line, " \t"), `\`); cont {
			logical.WriteString(body)
			logical.WriteByte(' ')
			continue
		}
		logical.WriteString(line)
		if err := d.add(start, logical.String()); err != nil {
			return nil, err
		}
		logical.Reset()
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if logical.Len() > 0 {
		return nil, fmt.Errorf("line %d: expected a line after the trailing backslash", start)
	}
	if len(d.Stages) == 0 {
		return nil, fmt.Errorf("expected at least one FROM")
	}
	return d, nil
}

func (d *Dockerfile) add(line int, text string) error {
	cmd, rest, _ := strings.Cut(strings.TrimSpace(text), " ")
	in := Instruction{Line: line, Cmd: strings.ToUpper(cmd)}
	rest = strings.TrimSpace(rest)
	for strings.HasPrefix(rest, "--") {
		var flag string
		flag, rest, _ = strings.Cut(rest, " ")
		in.Flags = append(in.Flags, flag)
		rest = strings.TrimSpace(rest)
	}
	in.Args = rest
	if in.Cmd == "FROM" {
		words := strings.Fields(rest)
		s := Stage{}
		switch {
		case len(words) == 1:
			s.Base = words[0]
		case len(words) == 3 && strings.EqualFold(words[1], "AS"):
			s.Base, s.Name = words[0], words[2]
		default:
			return fmt.Errorf("line %d: expected FROM IMAGE [AS NAME], got %q", line, text)
		}
		d.Stages = append(d.Stages, s)
		return nil
	}
	if len(d.Stages) == 0 {
		if in.Cmd != "ARG" {
			return fmt.Errorf("line %d: expected FROM or ARG before the first stage, got %s", line, in.Cmd)
		}
		return parseArgs(in, d.Args)
	}
	s := &d.Stages[len(d.Stages)-1]
	s.Instructions = append(s.Instructions, in)
	return nil
}

// Final is the stage the image is made of.
func (d *Dockerfile) Final() *Stage { return &d.Stages[len(d.Stages)-1] }

// Stage finds a stage by its AS name.
func (d *Dockerfile) Stage(name string) (*Stage, error) {
	for i := range d.Stages {
		if d.Stages[i].Name == name {
			return &d.Stages[i], nil
		}
	}
	return nil, fmt.Errorf("expected a stage named %q", name)
}

// Find lists the stage's instructions of one kind.
func (s *Stage) Find(cmd string) []Instruction {
	var out []Instruction
	for _, in := range s.Instructions {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// Flag is the value of a --name=value option, and whether it was given.
func (in Instruction) Flag(name string) (string, bool) {
	for _, f := range in.Flags {
		if v, ok := strings.CutPrefix(f, "--"+name+"="); ok {
			return v, true
		}
		if f == "--"+name {
			return "", true
		}
	}
	return "", false
}

// Exec is the JSON (exec) form of ENTRYPOINT or CMD; the shell form is refused because the
// distroless image has no shell to run it.
func (in Instruction) Exec() ([]string, error) {
	var argv []string
	if err := json.Unmarshal([]byte(in.Args), &argv); err != nil || len(argv) == 0 {
		return nil, fmt.Errorf("line %d: expected %s in exec form, [\"/path\", ...], got %q", in.Line, in.Cmd, in.Args)
	}
	return argv, nil
}

// Vars are the ARG defaults and ENV values visible at the end of the stage, over the global ARGs
// the stage redeclares; overrides win (what `--build-arg` or the builder's TARGETOS would set).
func (d *Dockerfile) Vars(s *Stage, overrides map[string]string) (map[string]string, error) {
	vars := map[string]string{}
	for _, in := range s.Instructions {
		switch in.Cmd {
		case "ARG":
			declared := map[string]string{}
			if err := parseArgs(in, declared); err != nil {
				return nil, err
			}
			for k, v := range declared {
				if g, ok := d.Args[k]; ok && v == "" {
					v = g
				}
				vars[k] = v
			}
		case "ENV":
			words, err := SplitShellWords(in.Args, lookupIn(vars))
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", in.Line, err)
			}
			for _, w := range words {
				k, v, ok := strings.Cut(w, "=")
				if !ok {
					return nil, fmt.Errorf("line %d: expected ENV NAME=value, got %q", in.Line, in.Args)
				}
				vars[k] = v
			}
		}
	}
	maps.Copy(vars, overrides)
	return vars, nil
}

// parseArgs reads `ARG NAME[=default] ...` into into.
func parseArgs(in Instruction, into map[string]string) error {
	words, err := SplitShellWords(in.Args, lookupIn(into))
	if err != nil {
		return fmt.Errorf("line %d: %w", in.Line, err)
	}
	for _, w := range words {
		k, v, _ := strings.Cut(w, "=")
		into[k] = v
	}
	return nil
}

func lookupIn(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// GoBuild is one `go build` a RUN instruction performs.
type GoBuild struct {
	Line int
	// Env holds the stage's ARGs and ENVs (see Vars) and the command's own NAME=value prefixes.
	Env map[string]string
	// Flags are the build flags other than -o, in order.
	Flags []string
	// Output is the -o path; Package the one package built.
	Output, Package string
}

// goBuildValueFlags are the `go build` flags that take a separate value.
var goBuildValueFlags = map[string]bool{
	"-o": true, "-ldflags": true, "-gcflags": true, "-asmflags": true, "-tags": true, "-mod": true,
	"-modfile": true, "-p": true, "-C": true, "-buildmode": true, "-pgo": true, "-overlay": true,
	"-toolexec": true, "-installsuffix": true, "-pkgdir": true, "-compiler": true, "-gccgoflags": true,
}

// GoBuilds lists the `go build` commands of the stage's RUN instructions, with variables expanded
// from vars (see Vars). RUN lines may chain commands with && or ;.
func (s *Stage) GoBuilds(vars map[string]string) ([]GoBuild, error) {
	var builds []GoBuild
	for _, in := range s.Find("RUN") {
		words, err := SplitShellWords(in.Args, lookupIn(vars))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", in.Line, err)
		}
		for _, command := range splitCommands(words) {
			cmdEnv := maps.Clone(vars) // RUN sees the stage's ARGs and ENVs as environment variables
			for len(command) > 0 && isAssignment(command[0]) {
				k, v, _ := strings.Cut(command[0], "=")
				cmdEnv[k] = v
				command = command[1:]
			}
			if len(command) < 2 || command[0] != "go" || command[1] != "build" {
				continue
			}
			b := GoBuild{Line: in.Line, Env: cmdEnv}
			var pkgs []string
			for i := 2; i < len(command); i++ {
				w := command[i]
				switch {
				case w == "-o" && i+1 < len(command):
					b.Output = command[i+1]
					i++
				case strings.HasPrefix(w, "-o="):
					b.Output = strings.TrimPrefix(w, "-o=")
				case goBuildValueFlags[w] && i+1 < len(command):
					b.Flags = append(b.Flags, w, command[i+1])
					i++
				case strings.HasPrefix(w, "-"):
					b.Flags = append(b.Flags, w)
				default:
					pkgs = append(pkgs, w)
				}
			}
			if len(pkgs) != 1 || b.Output == "" {
				return nil, fmt.Errorf("line %d: expected go build ... -o OUTPUT PACKAGE with one package, got %q", in.Line, strings.Join(command, " "))
			}
			b.Package = pkgs[0]
			builds = append(builds, b)
		}
	}
	return builds, nil
}

func isAssignment(w string) bool {
	k, _, ok := strings.Cut(w, "=")
	return ok && isName(k)
}

func splitCommands(words []string) [][]string {
	var out [][]string
	var cur []string
	for _, w := range words {
		if w == "&&" || w == ";" {
			out = append(out, cur)
			cur = nil
			continue
		}
		cur = append(cur, w)
	}
	return append(out, cur)
}

// SplitShellWords splits a command line the way a POSIX shell would for the simple commands a
// Dockerfile runs: quotes, backslash escapes, $NAME and ${NAME} expansion (lookup; an unknown name is
// an error, so a misspelt build argument cannot silently become empty), and && and ; as separate
// words. Pipes, redirections, subshells and ${NAME:-...} forms are refused.
func SplitShellWords(s string, lookup func(string) (string, bool)) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	expand := func(i int) (int, error) {
		// s[i] == '$'
		if i+1 < len(s) && s[i+1] == '{' {
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return 0, fmt.Errorf("expected } after ${ in %q", s)
			}
			name := s[i+2 : i+2+end]
			if !isName(name) {
				return 0, fmt.Errorf("unsupported expansion ${%s} in %q", name, s)
			}
			v, ok := lookup(name)
			if !ok {
				return 0, fmt.Errorf("undefined variable %s in %q", name, s)
			}
			cur.WriteString(v)
			return i + 2 + end + 1, nil
		}
		j := i + 1
		for j < len(s) && isNameByte(s[j], j == i+1) {
			j++
		}
		if j == i+1 {
			return 0, fmt.Errorf("unsupported use of $ in %q", s)
		}
		v, ok := lookup(s[i+1 : j])
		if !ok {
			return 0, fmt.Errorf("undefined variable %s in %q", s[i+1:j], s)
		}
		cur.WriteString(v)
		return j, nil
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			flush()
			i++
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unterminated ' in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+end])
			inWord = true
			i += end + 2
		case c == '"':
			inWord = true
			i++
			for {
				if i >= len(s) {
					return nil, fmt.Errorf("unterminated \" in %q", s)
				}
				if s[i] == '"' {
					i++
					break
				}
				switch {
				case s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0:
					cur.WriteByte(s[i+1])
					i += 2
				case s[i] == '$':
					next, err := expand(i)
					if err != nil {
						return nil, err
					}
					i = next
				case s[i] == '`':
					return nil, fmt.Errorf("unsupported command substitution in %q", s)
				default:
					cur.WriteByte(s[i])
					i++
				}
			}
		case c == '\\':
			if i+1 < len(s) {
				cur.WriteByte(s[i+1])
			}
			inWord = true
			i += 2
		case c == '$':
			next, err := expand(i)
			if err != nil {
				return nil, err
			}
			inWord = true
			i = next
		case c == '&' && i+1 < len(s) && s[i+1] == '&':
			flush()
			words = append(words, "&&")
			i += 2
		case c == ';':
			flush()
			words = append(words, ";")
			i++
		case strings.IndexByte("|&<>()`", c) >= 0:
			return nil, fmt.Errorf("unsupported shell syntax %q in %q", c, s)
		default:
			cur.WriteByte(c)
			inWord = true
			i++
		}
	}
	flush()
	return words, nil
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if !isNameByte(s[i], i == 0) {
			return false
		}
	}
	return true
}

// isNameByte says whether c can appear in a shell variable name (not a digit first).
func isNameByte(c byte, first bool) bool {
	return c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || !first && c >= '0' && c <= '9'
}
