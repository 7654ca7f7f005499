# The mesh-proxy image: the proxy container (`mesh-proxy run`, as proxy.uid) and the
# init container (`mesh-proxy init`, as root with NET_ADMIN and NET_RAW) that writes the
# iptables rules. The init step runs iptables-nft-restore or iptables-legacy-restore
# (proxyInit.iptablesMode), so the image carries Debian's iptables package, which has
# both; distroless has no iptables. Built by goreleaser's dockers_v2 (see
# .goreleaser.yaml), whose build context holds linux/amd64/mesh-proxy and
# linux/arm64/mesh-proxy.
FROM debian:bookworm-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iptables \
    && rm -rf /var/lib/apt/lists/*
ARG TARGETPLATFORM
COPY $TARGETPLATFORM/mesh-proxy /usr/local/bin/mesh-proxy
# proxy.uid in the chart's values: the init rules let this user's traffic through.
USER 2102:2102
ENTRYPOINT ["/usr/local/bin/mesh-proxy"]
