# The policy-platform image: kyverno, helm and pluto (pinned upstream releases, each
# checked against its sha256) and the policy repos under /repos/<name>/.
# `cargo xtask image` builds it and then adds the release labels and tags in one step;
# `docker build .` works too. Valid for the classic builder and for BuildKit (no
# RUN --mount, heredocs or syntax line).
#
# One layer per part that changes on its own, the rarest first: the runtime base (with the
# non-root user added to it), then one layer per tool, then the policies. Each part is
# prepared in a stage of its own, with fixed file metadata (scripts/image-stage.sh), and
# copied as a whole tree: the same bytes then make the same layer whatever the base and
# whenever built, so a release pushes only the layers that changed.

# The runtime base: Alpine 3.22.2, pinned by digest (tests pass a local busybox image).
ARG BASE_IMAGE=alpine:3.22.2@sha256:4b7ce07002c69e8f3d704a9c5d6fd3053be500b7f1c69fc0d80990c2ad8dd412
# Where the preparation stages run (sh, wget, sha256sum, tar, find, touch), pinned on its
# own: a new runtime base then re-uses the downloaded tools from the build cache.
ARG DOWNLOAD_IMAGE=alpine:3.22.2@sha256:4b7ce07002c69e8f3d704a9c5d6fd3053be500b7f1c69fc0d80990c2ad8dd412

FROM ${BASE_IMAGE} AS base

FROM ${DOWNLOAD_IMAGE} AS stage
COPY scripts/image-stage.sh /image-stage.sh

# Per tool: the version; where its release tarball comes from (upstream by default;
# `cargo xtask image --tools-mirror URL` points every URL at a mirror with the same file
# names); and the tarball's published sha256. Each tool has its own stage, so a new pin
# re-runs only that tool's download.
FROM stage AS pluto
ARG PLUTO_VERSION=5.24.0
ARG PLUTO_URL=https://github.com/FairwindsOps/pluto/releases/download/v${PLUTO_VERSION}/pluto_${PLUTO_VERSION}_linux_amd64.tar.gz \
    PLUTO_SHA256=b37fd6548e80614ffff5b3452a5e309d477ea61477519316bf9241246a9c4cbb
RUN sh /image-stage.sh fetch pluto "$PLUTO_URL" "$PLUTO_SHA256" pluto

FROM stage AS helm
ARG HELM_VERSION=3.22.0
ARG HELM_URL=https://get.helm.sh/helm-v${HELM_VERSION}-linux-amd64.tar.gz \
    HELM_SHA256=1e4ab49e429626cf6c6958d914248b78c9730803c2751b87627e171dc800e7bb
RUN sh /image-stage.sh fetch helm "$HELM_URL" "$HELM_SHA256" linux-amd64/helm

FROM stage AS kyverno
ARG KYVERNO_VERSION=1.19.1
ARG KYVERNO_URL=https://github.com/kyverno/kyverno/releases/download/v${KYVERNO_VERSION}/kyverno-cli_v${KYVERNO_VERSION}_linux_x86_64.tar.gz \
    KYVERNO_SHA256=b38228f367fc0fdc2b08f4c83ea50ac5f16c60ff8d62d76a66157c33c47b70ae
RUN sh /image-stage.sh fetch kyverno "$KYVERNO_URL" "$KYVERNO_SHA256" kyverno

# The non-root user, added to the runtime base's own passwd and group files; /tmp made
# world-writable (sticky) whatever the base, since the tools write temporary files there.
FROM stage AS user
COPY --from=base /etc/passwd /etc/group /in/
RUN set -eu; \
    mkdir -p /out/etc /out/tmp /out/workspace; \
    cp /in/passwd /in/group /out/etc/; \
    echo "policy:x:10001:10001:policy-platform:/workspace:/sbin/nologin" >> /out/etc/passwd; \
    echo "policy:x:10001:" >> /out/etc/group; \
    sh /image-stage.sh normalize /out; \
    chown 10001:10001 /out/workspace; \
    chmod 1777 /out/tmp

FROM stage AS policies
COPY policies/ /out/repos/
RUN sh /image-stage.sh normalize /out

# The image: the base, then its parts from the rarest change to the most frequent: pluto,
# helm, then kyverno (the policy engine, upgraded along with the policies), then the
# policies. A changed part re-copies the parts after it (locally; their layers stay the
# same, so they are not pushed again). Each copies a whole /out tree: copying a file into
# an existing directory would leave that directory's fresh mtime in the layer.
# USER and WORKDIR come right after the user's layer (COPY ignores USER; /workspace exists
# by then): the classic builder commits each step, ~1 s each on a 230 MB image, and there
# they stay cached when a tool or the policies change.
FROM base
COPY --from=user /out/ /
USER 10001:10001
WORKDIR /workspace
COPY --from=pluto /out/ /
COPY --from=helm /out/ /
COPY --from=kyverno /out/ /
COPY --from=policies /out/ /
