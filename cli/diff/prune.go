package diff

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/meshplane/mesh/lifecycle/diff"
	"github.com/meshplane/mesh/lifecycle/prune"
	"github.com/meshplane/mesh/render/manifest"
)

// pruneLister gives the diff what `mesh prune` of the same input would delete: the
// objects of the input's ApplySets that the cluster holds and the input does not.
// Input without an ApplySet parent (manifests mesh did not render) has none.
type pruneLister struct{ c *prune.Cluster }

func (p pruneLister) PruneCandidates(ctx context.Context, objs []diff.Object) ([]diff.Ref, error) {
	in := make([]manifest.Object, len(objs))
	for i, o := range objs {
		in[i] = o.Object
		if len(in[i].YAML) == 0 { // read from input: the decoded body is the object
			b, err := json.Marshal(o.Body)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", o.Source, err)
			}
			in[i].YAML = b
		}
	}
	plan, err := prune.Candidates(ctx, p.c, in)
	if errors.Is(err, prune.ErrNoApplySet) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	refs := make([]diff.Ref, len(plan.Candidates))
	for i, r := range plan.Candidates {
		refs[i] = diff.Ref{APIVersion: r.APIVersion, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
	}
	return refs, nil
}
