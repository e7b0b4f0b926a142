// Package pareto finds the non-dominated candidates of a two-objective trade-off and selects one
// candidate under upper-bound constraints (an SLA), or the closest one when none meets them.
//
// It is generic over the candidate type: callers pass accessor functions, so the same code serves
// predicted configurations (rapid search), measured ones (thorough search) and anything a UI plots.
// Every function is pure and deterministic: equal inputs give equal outputs, ties are broken by
// input order, never by map iteration or sort instability.
package pareto
