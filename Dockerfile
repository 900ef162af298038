# sigwarden provider image.
# Build: docker build --build-arg SOURCE_DATE_EPOCH="$(git log -1 --format=%ct)" -t sigwarden .
# Everything Python comes from the hashed locks (requirements/build.txt for the build backend,
# requirements/extras/cloud.txt for the image: the runtime and every cloud SDK, so it runs on any cloud); the
# base image is named by digest. Stage 2 copies only the installed
# tree: no compilers, no pip caches, no source. `make release` runs the same install commands to build this
# tree's contents outside Docker (scripts/release/imagefs.py); keep the two in step.
ARG BASE=python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1

FROM ${BASE} AS build
ARG SOURCE_DATE_EPOCH=0
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH}
WORKDIR /src
COPY requirements/build.txt requirements/
COPY requirements/extras/cloud.txt requirements/extras/
RUN python -m pip install --require-hashes -r requirements/build.txt
COPY pyproject.toml README.md ./
COPY provider ./provider
COPY policies ./policies
RUN python -m pip wheel --no-deps --no-build-isolation --wheel-dir /dist . \
 && python -m pip install --require-hashes --no-compile --target /opt/sigwarden/lib -r requirements/extras/cloud.txt \
 && python -m pip install --no-index --find-links /dist --no-deps --no-compile --target /opt/sigwarden/lib sigwarden \
 && rm -rf /opt/sigwarden/lib/bin

FROM ${BASE}
COPY --from=build /opt/sigwarden /opt/sigwarden
ENV PYTHONPATH=/opt/sigwarden/lib \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A numeric non-root user, so runAsNonRoot can be checked without a passwd entry.
USER 65532:65532
EXPOSE 8443 9090
ENTRYPOINT ["python", "-m", "provider"]
CMD ["serve", "--config", "/etc/sigwarden/config/config.yaml"]
