# The end-to-end demo's traffic generator (e2e/loadgen), with its counters on /stats.
FROM scratch
ARG TARGETPLATFORM
COPY $TARGETPLATFORM/loadgen /loadgen
USER 2201:2201
ENTRYPOINT ["/loadgen"]
