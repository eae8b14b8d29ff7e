// Command promrule validates a PrometheusRule manifest (the Prometheus
// Operator's monitoring.coreos.com/v1 kind) offline, for scripts/ci-prometheus.sh:
// the CRD's OpenAPI schema is not published on the Go module proxy, so
// instead of kubeconform the manifest is decoded strictly into the
// operator's own Go types (unknown or mistyped fields are errors), checked
// for what the CRD requires, and its rule groups are written out as a
// Prometheus rule file for `promtool check rules`:
//
//	promrule -groups groups.yml deploy/k8s/prometheus/prometheusrule.yaml
//
// It is its own module (the operator's types are a CI dependency, not
// agentd's) and a CI tool, not part of agentd.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "promrule:", err)
		os.Exit(1)
	}
}

// dns1123 is a Kubernetes object name (a DNS subdomain).
var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

func run(args []string) error {
	fs := flag.NewFlagSet("promrule", flag.ContinueOnError)
	groupsOut := fs.String("groups", "", "write the manifest's rule groups here, as a Prometheus rule file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("want one manifest")
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	var pr monitoringv1.PrometheusRule
	if err := yaml.UnmarshalStrict(data, &pr); err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	var errs []error
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" {
		errs = append(errs, fmt.Errorf("apiVersion/kind %s/%s; want monitoring.coreos.com/v1 PrometheusRule", pr.APIVersion, pr.Kind))
	}
	if len(pr.Name) > 253 || !dns1123.MatchString(pr.Name) {
		errs = append(errs, fmt.Errorf("metadata.name %q is not a valid object name", pr.Name))
	}
	if len(pr.Spec.Groups) == 0 {
		errs = append(errs, errors.New("spec.groups is empty"))
	}
	names := map[string]bool{}
	for i, g := range pr.Spec.Groups {
		if g.Name == "" || names[g.Name] {
			errs = append(errs, fmt.Errorf("spec.groups[%d]: name %q is empty or repeated", i, g.Name))
		}
		names[g.Name] = true
		for j, r := range g.Rules {
			if (r.Record == "") == (r.Alert == "") {
				errs = append(errs, fmt.Errorf("spec.groups[%d].rules[%d]: want exactly one of record and alert", i, j))
			}
			if r.Expr.String() == "" {
				errs = append(errs, fmt.Errorf("spec.groups[%d].rules[%d]: expr is empty", i, j))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	if *groupsOut != "" {
		out, err := yaml.Marshal(map[string]any{"groups": pr.Spec.Groups})
		if err != nil {
			return err
		}
		if err := os.WriteFile(*groupsOut, out, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("%s: PrometheusRule %s: %d groups, valid\n", fs.Arg(0), pr.Name, len(pr.Spec.Groups))
	return nil
}
