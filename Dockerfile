# One image recipe for the seven services: the build arguments choose which.
# Build from the repository root (the image also needs the shared libraries and
# constraints.txt), e.g.
#   docker build --build-arg SERVICE=iam --build-arg HTTP_PORT=8101 -t interlock-iam .
# compose.yml passes both arguments for every service.
#
# SERVICE   a folder of services/ (iam, workflow, scheduler, worker, metadata,
#           notification, artifact)
# HTTP_PORT that service's REST/health port (8101-8107), baked in as
#           INTERLOCK_HTTP_PORT so the image's healthcheck knows where to ask

FROM python:3.11-slim-trixie AS build
ARG SERVICE
ARG HTTP_PORT
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
# Before any COPY: an empty SERVICE would otherwise copy every service.
RUN test -n "$SERVICE" && test -n "$HTTP_PORT" \
    || { echo "build with --build-arg SERVICE=<name> --build-arg HTTP_PORT=<port>" >&2; exit 1; }
RUN python -m venv /opt/venv
WORKDIR /src
COPY constraints.txt ./
COPY libs/protos libs/protos
COPY libs/common libs/common
COPY services/${SERVICE} services/${SERVICE}
# Regular (non-editable) installs, so the runtime stage needs the venv and
# nothing from /src. The cache mount (BuildKit) keeps downloads across
# code-only rebuilds. Every service installs an `interlock-<name>` command;
# the link gives the runtime stage one name to run.
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/venv/bin/pip install -c constraints.txt ./libs/protos ./libs/common "./services/${SERVICE}" \
    && ln -s "interlock-${SERVICE}" /opt/venv/bin/interlock-service

# Same base as the build stage: the venv's interpreter is a link to its Python.
FROM python:3.11-slim-trixie AS runtime
ARG SERVICE
ARG HTTP_PORT
LABEL org.opencontainers.image.title="interlock-${SERVICE}"
# A fixed numeric id lets orchestrators check "runs as non-root" without
# reading /etc/passwd.
RUN groupadd --system --gid 10001 interlock \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin interlock
COPY --from=build /opt/venv /opt/venv
# The settings default to loopback, which nothing outside a container can
# reach. Every listener of a service (gRPC, IAM's authorizer) binds
# INTERLOCK_HTTP_HOST's address unless told otherwise, so this one variable
# opens them all. Only variables every service reads belong here: a service
# refuses to start with an INTERLOCK_* variable it does not read.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    INTERLOCK_HTTP_HOST=0.0.0.0 \
    INTERLOCK_HTTP_PORT=${HTTP_PORT}
USER 10001:10001
# IAM also listens on 9101 (gRPC) and 9111 (authorizer), the scheduler on 9103
# (gRPC); EXPOSE only documents, and publishing is compose's business.
EXPOSE ${HTTP_PORT}
# The slim image has no curl; the service's own interpreter does the probe.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['INTERLOCK_HTTP_PORT'], timeout=2)"]
CMD ["interlock-service"]
