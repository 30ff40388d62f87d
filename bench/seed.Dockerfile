# The SEED design, kept as the baseline of bench/layers.sh: a byte-for-byte copy of the
# Dockerfile before issue 9 (one RUN fetching every tool, one COPY of all three). Not
# built by the xtask; do not edit it.

# The policy-platform image: kyverno, helm and pluto (pinned upstream releases, each
# checked against its sha256) and the policy repos under /repos/<name>/.
# `cargo xtask image` builds it and then adds the release labels and tags in one step;
# `docker build .` works too. Valid for the classic builder and for BuildKit (no
# RUN --mount, heredocs or syntax line). Few instructions: each is a commit for the
# classic builder.

# Alpine 3.22.2, pinned by digest (tests pass a local busybox image instead).
ARG BASE_IMAGE=alpine:3.22.2@sha256:4b7ce07002c69e8f3d704a9c5d6fd3053be500b7f1c69fc0d80990c2ad8dd412

FROM ${BASE_IMAGE} AS download

# Per tool: the version; where its release tarball comes from (upstream by default;
# `cargo xtask image --tools-mirror URL` points every URL at a mirror with the same file
# names); and the tarball's published sha256.
ARG KYVERNO_VERSION=1.19.1 \
    HELM_VERSION=3.21.4 \
    PLUTO_VERSION=5.10.4
ARG KYVERNO_URL=https://github.com/kyverno/kyverno/releases/download/v${KYVERNO_VERSION}/kyverno-cli_v${KYVERNO_VERSION}_linux_x86_64.tar.gz \
    KYVERNO_SHA256=b38228f367fc0fdc2b08f4c83ea50ac5f16c60ff8d62d76a66157c33c47b70ae \
    HELM_URL=https://get.helm.sh/helm-v${HELM_VERSION}-linux-amd64.tar.gz \
    HELM_SHA256=61f88ab166748cb19604d7884cb100ae9ccb13804ddeb98e08af167eacbb6a14 \
    PLUTO_URL=https://github.com/FairwindsOps/pluto/releases/download/v${PLUTO_VERSION}/pluto_${PLUTO_VERSION}_linux_amd64.tar.gz \
    PLUTO_SHA256=cb21cb99a79386474fc9f172bd0c092f7ca766dc529163ec42a544e1fc9d09cc

# fetch TOOL URL SHA256 MEMBER: download, verify, and unpack only the binary into /rootfs,
# the tree the final stage copies. Every failure names the tool (the xtask reads these).
# The non-root user is added to copies of the base's passwd and group files; /tmp is made
# world-writable (sticky) whatever the base, since the tools write temporary files there.
RUN set -eu; \
    fetch() { \
      echo "fetching $1 from $2"; \
      wget -q -O "/download/$1.tar.gz" "$2" || { echo "download failed for $1 from $2"; exit 1; }; \
      printf '%s  %s\n' "$3" "/download/$1.tar.gz" > "/download/$1.sha256"; \
      sha256sum -c "/download/$1.sha256" || { echo "checksum mismatch for $1: $2 is not the release pinned by its sha256 $3"; exit 1; }; \
      tar -xzOf "/download/$1.tar.gz" "$4" > "/rootfs/usr/local/bin/$1" || { echo "no $4 in the $1 tarball"; exit 1; }; \
      chmod 0755 "/rootfs/usr/local/bin/$1"; \
    }; \
    mkdir -p /download /rootfs/usr/local/bin /rootfs/etc /rootfs/workspace /rootfs/tmp; \
    fetch kyverno "$KYVERNO_URL" "$KYVERNO_SHA256" kyverno; \
    fetch helm "$HELM_URL" "$HELM_SHA256" linux-amd64/helm; \
    fetch pluto "$PLUTO_URL" "$PLUTO_SHA256" pluto; \
    cp /etc/passwd /etc/group /rootfs/etc/; \
    echo "policy:x:10001:10001:policy-platform:/workspace:/sbin/nologin" >> /rootfs/etc/passwd; \
    echo "policy:x:10001:" >> /rootfs/etc/group; \
    chown 10001:10001 /rootfs/workspace; \
    chmod 1777 /rootfs/tmp; \
    rm -rf /download

# The image: the base, the three binaries, the user, and the policies. Nothing else.
FROM ${BASE_IMAGE}
COPY --from=download /rootfs/ /
COPY policies/ /repos/
USER 10001:10001
WORKDIR /workspace
