# The test node's cluster DNS: hack/coredns (CoreDNS with the plugins the node needs).
FROM gcr.io/distroless/static-debian12:nonroot
ARG TARGETPLATFORM
COPY $TARGETPLATFORM/coredns /coredns
ENTRYPOINT ["/coredns"]
