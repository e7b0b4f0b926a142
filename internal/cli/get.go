package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// GetOptions lists DGDRs or shows one.
type GetOptions struct {
	genericiooptions.IOStreams
	printer *getPrinter

	Name          string
	AllNamespaces bool

	cluster *cluster
}

// NewCmdGet is `kubectl dgdr get [NAME]`.
func NewCmdGet(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &GetOptions{IOStreams: streams, printer: newGetPrinter()}
	cmd := &cobra.Command{
		Use:   "get [NAME]",
		Short: "List DynamoGraphDeploymentRequests or show one",
		Long: `List DynamoGraphDeploymentRequests with their model, backend, strategy, phase and generated DGD,
or show one. -o wide adds the workload, the SLA and the selected configuration; -o json, yaml, name,
jsonpath=… and custom-columns=… print as kubectl get does.`,
		Example: `  # List the DGDRs of the current namespace
  kubectl dgdr get

  # List them in every namespace, with the SLA and the selected configuration
  kubectl dgdr get -A -o wide

  # Print the phase of one
  kubectl dgdr get my-model -o jsonpath='{.status.phase}'`,
		Args:              withUsageHint(cobra.MaximumNArgs(1)),
		ValidArgsFunction: completeDGDRNames(getter, 1),
		RunE:              runCommand(getter, o),
	}
	o.printer.addFlags(cmd)
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "List DGDRs in every namespace")
	return cmd
}

// Complete reads the arguments and builds the client.
func (o *GetOptions) Complete(getter genericclioptions.RESTClientGetter, _ *cobra.Command, args []string) error {
	if len(args) == 1 {
		o.Name = args[0]
	}
	c, err := newCluster(getter, o.IOStreams)
	if err != nil {
		return err
	}
	o.cluster = c
	return nil
}

// Validate checks the flags before anything is read.
func (o *GetOptions) Validate() error {
	if o.Name != "" && o.AllNamespaces {
		return WithHint(fmt.Errorf("a name cannot be combined with -A"), "drop -A and pick the namespace with -n")
	}
	if _, err := o.printer.toPrinter(false); err != nil {
		return err
	}
	return nil
}

// Run prints the DGDRs.
func (o *GetOptions) Run(ctx context.Context) error {
	var items []unstructured.Unstructured
	if o.Name != "" {
		// A profiling Job that died shows as Failed with its cause (recorded here if no one did yet).
		if d, err := o.cluster.getDGDR(ctx, o.Name); err == nil {
			if job, err := o.cluster.profilingJob(ctx, d); err == nil {
				if _, _, err := o.cluster.observeJob(ctx, d, job, time.Now()); err != nil {
					fmt.Fprintf(o.ErrOut, "Warning: %v\n", err)
				}
			}
		}
		u, err := o.cluster.getDGDRUnstructured(ctx, o.Name)
		if err != nil {
			return err
		}
		items = []unstructured.Unstructured{*u}
	} else {
		ns := o.cluster.namespace
		if o.AllNamespaces {
			ns = ""
		}
		var err error
		if items, err = o.cluster.listDGDRs(ctx, ns); err != nil {
			return err
		}
		if len(items) == 0 {
			// As kubectl: the empty result is a notice on stderr, not data.
			if o.AllNamespaces {
				fmt.Fprintln(o.ErrOut, "No resources found")
			} else {
				fmt.Fprintf(o.ErrOut, "No resources found in %s namespace.\n", ns)
			}
			return nil
		}
	}

	printer, err := o.printer.toPrinter(o.AllNamespaces)
	if err != nil {
		return err
	}
	var obj runtime.Object
	switch {
	case o.printer.table():
		if obj, err = dgdrTable(items, time.Now()); err != nil {
			return err
		}
	case o.Name != "":
		obj = &items[0]
	default:
		list := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "v1", "kind": "List", "metadata": map[string]any{"resourceVersion": ""}}}
		list.Items = items
		obj = list
	}
	return printTo(printer, obj, o.Out)
}
