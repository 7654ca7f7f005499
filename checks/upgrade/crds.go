package upgrade

import (
	"context"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/render/manifest"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// storedVersions fails for every version that a CRD of the new render still has
// objects stored at in the cluster (status.storedVersions) and that the render's CRD
// no longer serves: after the apply the API server could not read those objects.
func storedVersions(ctx context.Context, c *Cluster, objs []manifest.Object) error {
	var problems []string
	n := 0
	for _, obj := range objs {
		if obj.Kind != "CustomResourceDefinition" {
			continue
		}
		n++
		served, err := servedVersions(obj)
		if err != nil {
			return err
		}
		live, err := c.Dynamic.Resource(crdResource).Get(ctx, obj.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue // a new CRD: nothing is stored yet
		}
		if err != nil {
			return fmt.Errorf("CustomResourceDefinition/%s: %w", obj.Name, err)
		}
		stored, _, err := unstructured.NestedStringSlice(live.Object, "status", "storedVersions")
		if err != nil {
			return fmt.Errorf("CustomResourceDefinition/%s: status.storedVersions: %w", obj.Name, err)
		}
		for _, v := range stored {
			if !slices.Contains(served, v) {
				problems = append(problems, fmt.Sprintf("CustomResourceDefinition/%s has objects stored at %s, which the new render does not serve (it serves %s)",
					obj.Name, v, strings.Join(served, ", ")))
			}
		}
	}
	if n == 0 {
		return fmt.Errorf("the new render holds no CustomResourceDefinition")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: migrate the stored objects to a served version first (read and write each back, or a storage version migration), then remove the old version from status.storedVersions",
			strings.Join(problems, "; "))
	}
	return nil
}

// servedVersions lists the versions a rendered CRD serves.
func servedVersions(obj manifest.Object) ([]string, error) {
	var crd struct {
		Spec struct {
			Versions []struct {
				Name   string `json:"name"`
				Served bool   `json:"served"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(obj.YAML, &crd); err != nil {
		return nil, fmt.Errorf("%s (%s): %w", obj, obj.Source, err)
	}
	var out []string
	for _, v := range crd.Spec.Versions {
		if v.Served {
			out = append(out, v.Name)
		}
	}
	return out, nil
}
