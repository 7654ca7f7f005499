# The mesh-controller image: identity, destination and injector (one subcommand each).
# Built by goreleaser's dockers_v2 (see .goreleaser.yaml), whose build context holds
# the binaries as linux/amd64/mesh-controller and linux/arm64/mesh-controller.
# A static Go binary: distroless/static has CA certificates, tzdata and no shell.
FROM gcr.io/distroless/static-debian12:nonroot
ARG TARGETPLATFORM
COPY $TARGETPLATFORM/mesh-controller /usr/local/bin/mesh-controller
# controller.uid in the chart's values (the pod sets runAsUser to it too).
USER 2103:2103
ENTRYPOINT ["/usr/local/bin/mesh-controller"]
