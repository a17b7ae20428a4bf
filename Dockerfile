# syntax=docker/dockerfile:1
# QAI's images, one target each, from one build:
#
#   docker build --target projects     -t qai/projects .
#   docker build --target messages     -t qai/messages .
#   docker build --target orchestrator -t qai/orchestrator .
#   docker build --target sandbox      -t qai/sandbox .
#   docker build --target migrate      -t qai/migrate .
#
# The build stage installs tools/setup.sh's build packages and runs `cmake --install` into
# /opt/qai; the final images hold only the runtime libraries the binaries load (checked by
# tests/deploy/dockerfile_test.py against `ldd` and `dpkg -S`) and run as the user qai (10001).

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config ca-certificates \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev \
      libsoci-dev libboost-dev libpq-dev libssl-dev nlohmann-json3-dev libcpp-httplib-dev libbrotli-dev zlib1g-dev libseccomp-dev libdtl-dev libarchive-dev \
      libcurl4-openssl-dev prometheus-cpp-dev googletest libgtest-dev libgmock-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
 && ninja -C /build qai-projects qai-messages qai-orchestrator qai-sandbox qai-migrate qai \
 && cmake --install /build --prefix /opt/qai --strip

# runtime: what every QAI binary loads, and nothing to build with.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates libgrpc++1.51 libprotobuf32 libabsl20220623 libsoci-core4.0 \
      libsoci-postgresql4.0 libpq5 libssl3 libbrotli1 zlib1g libseccomp2 libcurl4 libarchive13 \
      libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/qai --no-create-home qai
USER 10001:10001

FROM runtime AS migrate
COPY --from=build /opt/qai/bin/qai-migrate /usr/local/bin/qai-migrate
COPY --from=build /opt/qai/bin/qai /usr/local/bin/qai
ENTRYPOINT ["/usr/local/bin/qai-migrate"]

FROM runtime AS projects
COPY --from=build /opt/qai/bin/qai-projects /usr/local/bin/qai-projects
COPY --from=build /opt/qai/bin/qai-migrate /usr/local/bin/qai-migrate
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/qai-projects"]

FROM runtime AS messages
COPY --from=build /opt/qai/bin/qai-messages /usr/local/bin/qai-messages
COPY --from=build /opt/qai/bin/qai-migrate /usr/local/bin/qai-migrate
EXPOSE 50052 9090
ENTRYPOINT ["/usr/local/bin/qai-messages"]

# The orchestrator runs no untrusted code (qai-sandbox does): an ordinary image.
FROM runtime AS orchestrator
COPY --from=build /opt/qai/bin/qai-orchestrator /usr/local/bin/qai-orchestrator
COPY --from=build /opt/qai/bin/qai-migrate /usr/local/bin/qai-migrate
EXPOSE 50053 9090
ENTRYPOINT ["/usr/local/bin/qai-orchestrator"]

# qai-sandbox runs agents' commands: bubblewrap confines them, prlimit and setpriv (util-linux)
# set their limits and users, and tini, as PID 1, reaps whatever they orphan. The image's user
# is qai; the Kubernetes manifest runs it as root with six capabilities so each project's
# commands get a uid of their own (docs/operations.md: "Deploying on Kubernetes").
FROM runtime AS sandbox
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap util-linux tini \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o 10001 -g 10001 -m 0711 /var/lib/qai /var/lib/qai/sandboxes
USER 10001:10001
COPY --from=build /opt/qai/bin/qai-sandbox /usr/local/bin/qai-sandbox
COPY --from=build /opt/qai/bin/qai-migrate /usr/local/bin/qai-migrate
EXPOSE 50054 8080 9090
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/qai-sandbox"]
