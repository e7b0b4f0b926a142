// Package hw describes GPUs: a catalog of SKUs with their published figures, the mapping from
// GPU feature discovery labels to catalog entries, and discovery of a cluster's GPUs from its Nodes.
package hw
