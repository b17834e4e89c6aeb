#!/usr/bin/env bash
# A short script written for `docker`. It must run unchanged with `docker`
# aliased to `dockless` (test/integration/cli.test.ts puts a `docker` wrapper
# first on PATH). Arguments: a base image with a shell, a registry host, a
# scratch directory.
set -euo pipefail
BASE=$1 REGISTRY=$2 WORK=$3
mkdir -p "$WORK/ctx"
step() { echo "compat: $*"; }

step "build with build args"
cat > "$WORK/ctx/Dockerfile" <<DOCKERFILE
FROM $BASE
ARG VERSION=dev
RUN echo "version \$VERSION" > /version
CMD ["cat", "/version"]
DOCKERFILE
docker build -t compat-app:1 --build-arg VERSION=1.2.3 "$WORK/ctx"
[ "$(docker run --rm compat-app:1)" = "version 1.2.3" ]

step "run detached, exec, logs, cp"
cid=$(docker run -d --name compat-svc compat-app:1 sh -c 'echo ready; sleep 300')
[ -n "$cid" ]
[ "$(docker exec compat-svc cat /version)" = "version 1.2.3" ]
echo "payload" > "$WORK/payload.txt"
docker cp "$WORK/payload.txt" compat-svc:/tmp/payload.txt
[ "$(docker exec compat-svc cat /tmp/payload.txt)" = "payload" ]
docker cp compat-svc:/version "$WORK/version.txt"
[ "$(cat "$WORK/version.txt")" = "version 1.2.3" ]
docker ps --format '{{.Names}}' | grep -qx compat-svc
docker stop -t 1 compat-svc >/dev/null
docker logs compat-svc | grep -qx ready
docker rm compat-svc >/dev/null

step "run with a published port"
docker run -d --name compat-port -p 127.0.0.1::7001 "$BASE" sh -c 'while :; do echo hello-port | nc -l -p 7001; done' >/dev/null
hostport=$(docker port compat-port 7001)
for i in $(seq 50); do reply=$(cat < "/dev/tcp/${hostport%:*}/${hostport##*:}" 2>/dev/null || true); [ -n "$reply" ] && break; sleep 0.1; done
[ "$reply" = "hello-port" ]
docker rm -f compat-port >/dev/null

step "logs -f of a container that exits"
docker run -d --name compat-job "$BASE" sh -c 'echo one; echo two' >/dev/null
[ "$(docker logs -f compat-job | tr '\n' ' ')" = "one two " ]
docker rm -f compat-job >/dev/null

step "tag, push, pull"
docker tag compat-app:1 "$REGISTRY/compat/app:1"
docker push "$REGISTRY/compat/app:1"
docker rmi "$REGISTRY/compat/app:1" >/dev/null
docker pull "$REGISTRY/compat/app:1"
[ "$(docker run --rm "$REGISTRY/compat/app:1")" = "version 1.2.3" ]

step "save and load"
docker save -o "$WORK/app.tar" compat-app:1
docker rmi compat-app:1 >/dev/null
docker load -i "$WORK/app.tar"
docker images --format '{{.Repository}}:{{.Tag}}' | grep -qx compat-app:1

echo "compat: all steps passed"
