// Package build holds the release's container images (the Dockerfiles goreleaser's
// dockers_v2 builds, see .goreleaser.yaml) and a test that the image references the
// release produces are the ones `mesh install` renders.
package build
