# sigwarden provider image. Build: docker build -t sigwarden .
# Stage 1 builds a wheel and a virtual environment; stage 2 copies only the environment: no compilers,
# no pip caches, no source tree. Every cloud SDK extra is installed (`[cloud]`): the image runs on any cloud.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY provider ./provider
RUN python -m pip wheel --no-deps --wheel-dir /dist . \
 && python -m venv /opt/sigwarden \
 && /opt/sigwarden/bin/pip install "$(ls /dist/*.whl)[cloud]"

FROM python:3.11-slim
COPY --from=build /opt/sigwarden /opt/sigwarden
ENV PATH=/opt/sigwarden/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A numeric non-root user, so runAsNonRoot can be checked without a passwd entry.
USER 65532:65532
EXPOSE 8443 9090
ENTRYPOINT ["sigwarden"]
CMD ["serve", "--config", "/etc/sigwarden/config/config.yaml"]
