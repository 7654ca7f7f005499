#!/usr/bin/env bash
# Push the release images (controller, proxy) to a registry, without Docker:
#
#   hack/push-images.sh REGISTRY [VERSION]
#
# builds them (go run ./build/images, the same definition as the release) tagged
# REGISTRY/controller:VERSION and REGISTRY/proxy:VERSION, and pushes them with
# go-containerregistry (credentials from ~/.docker/config.json; plain HTTP for
# localhost and 127.0.0.1). Install to match: mesh install --set image.registry=REGISTRY
# (and --set image.tag=VERSION if VERSION is not the CLI's). VERSION defaults to dev,
# what a mesh CLI built from source renders.
set -euo pipefail
[ $# -ge 1 ] && [ -n "$1" ] || { echo "usage: $0 REGISTRY [VERSION]" >&2; exit 2; }
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec go run ./build/images -o _output/images -registry "$1" -version "${2:-dev}" -push controller proxy
