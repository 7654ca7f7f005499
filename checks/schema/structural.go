package schema

import (
	"encoding/json"
	"fmt"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// checkStructural reports whether a CRD version's openAPIV3Schema is a structural
// schema, with the API server's own code; the API server refuses v1 CRDs whose
// schemas are not, and only for structural schemas is "unknown field" well defined.
func checkStructural(crdName string, index int, s map[string]any) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	var v1 apiextensionsv1.JSONSchemaProps
	if err := json.Unmarshal(b, &v1); err != nil {
		return fmt.Errorf("CustomResourceDefinition %s: openAPIV3Schema: %w", crdName, err)
	}
	var internal apiextensions.JSONSchemaProps
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(&v1, &internal, nil); err != nil {
		return fmt.Errorf("CustomResourceDefinition %s: openAPIV3Schema: %w", crdName, err)
	}
	ss, err := structuralschema.NewStructural(&internal)
	if err != nil {
		return fmt.Errorf("CustomResourceDefinition %s: openAPIV3Schema is not structural: %w", crdName, err)
	}
	path := field.NewPath("spec", "versions").Index(index).Child("schema", "openAPIV3Schema")
	if errs := structuralschema.ValidateStructural(path, ss); len(errs) > 0 {
		return fmt.Errorf("CustomResourceDefinition %s: schema is not structural: %w", crdName, errs.ToAggregate())
	}
	return nil
}
