// Package lifecycle holds the DGDR lifecycle steps shared by the profiler (in-cluster half) and the
// plugin (client-side half): the phase state machine, status updates with optimistic concurrency,
// conditions, the one owner-checked apply path of a DGDR's DGD (ApplySelected), the stored results,
// and reading a DGD's readiness.
package lifecycle
