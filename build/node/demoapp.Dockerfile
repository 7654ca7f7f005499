# The end-to-end demo's server (e2e/demoapp): HTTP/1, gRPC and a server-first TCP protocol.
FROM scratch
ARG TARGETPLATFORM
COPY $TARGETPLATFORM/demoapp /demoapp
USER 2200:2200
ENTRYPOINT ["/demoapp"]
