// Package numfmt is the project's one way of printing a number for people: plain decimals, rounded
// to a chosen precision, without trailing zeros ("81.25", "15", "0.5").
package numfmt

import (
	"strconv"
	"strings"
)

// Fixed prints v with at most decimals digits after the point and no trailing zeros (nor a trailing
// point); decimals < 0 prints the fewest digits that read back as v.
func Fixed(v float64, decimals int) string {
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
