# The pod sandbox image of the test node (containerd's sandbox_image): e2e/images/pause.
FROM scratch
ARG TARGETPLATFORM
COPY $TARGETPLATFORM/pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
