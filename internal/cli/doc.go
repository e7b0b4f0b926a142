// Package cli implements the kubectl-dgdr commands. Each command follows kubectl's
// Options + Complete/Validate/Run pattern and receives the one ConfigFlags made by NewRootCmd.
//
// Export, promote and the web UI's cluster view go through internal/deploy. The terminal rendering
// (render.go: the Pareto table and a character plot of the front) takes plain values and an
// io.Writer, so that plan and results share it; it reads no flags and talks to no cluster.
package cli
