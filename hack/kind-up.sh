#!/usr/bin/env bash
# A real cluster for people who have Docker: kind, the image built and loaded, KEDA, a
# Temporal dev server and the chart. Needs docker, kind, kubectl and helm on PATH.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
# shellcheck source=versions.env
source "$here/versions.env"
cluster="${KIND_CLUSTER:-temporal-flow}"
# The KEDA chart's version follows KEDA's own.
keda_chart_version="${KEDA_CHART_VERSION:-${KEDA_VERSION#v}}"

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "kind-up needs $tool on PATH" >&2; exit 2; }
done

if ! kind get clusters | grep -qx "$cluster"; then
  kind create cluster --name "$cluster" --wait 120s
fi
kubectl config use-context "kind-$cluster"

# The images: the production one runs the operator, the listeners and the root
# orchestrator; the samples one (plus the sample flows' functions and their database
# driver) runs the workers, since the next steps apply the sample flows. When `make image`
# has built both for this very tree, their cached archives are loaded as they are: the same
# images the dev node runs. Otherwise docker builds them on the official python base.
cached_image() {  # target -> "<reference> <archive>", or a non-zero exit
  [[ -x "$root/.venv/bin/python" ]] || return 1
  (cd "$root" && .venv/bin/python -m tflow_devstack.images cached --target "$1" 2>/dev/null)
}
if production="$(cached_image production)" && samples="$(cached_image samples)"; then
  read -r image archive <<<"$production"
  read -r worker_image worker_archive <<<"$samples"
  echo "loading $image and $worker_image, built by make image"
  kind load image-archive "$archive" --name "$cluster"
  kind load image-archive "$worker_archive" --name "$cluster"
else
  image=temporal-flow:dev
  worker_image=temporal-flow-samples:dev
  docker build --target production -t "$image" "$root"
  docker build --target samples -t "$worker_image" "$root"
  kind load docker-image "$image" "$worker_image" --name "$cluster"
fi

helm repo add kedacore https://kedacore.github.io/charts >/dev/null
helm repo update kedacore >/dev/null
helm upgrade --install keda kedacore/keda --version "$keda_chart_version" \
  --namespace keda --create-namespace --wait

kubectl apply -f "$root/manifests/dev/temporal-dev-server.yaml"
kubectl rollout status -n temporal deployment/temporal --timeout=180s

helm upgrade --install temporal-flow "$root/charts/temporal-flow" \
  --namespace temporal-flow --create-namespace \
  --values "$here/kind-values.yaml" \
  --set image.repository="${image%:*}" --set image.tag="${image##*:}" \
  --set workers.image.repository="${worker_image%:*}" --set workers.image.tag="${worker_image##*:}" \
  --wait

cat <<NEXT

Temporal Flow runs on kind cluster "$cluster". Next:
  kubectl apply -f $root/manifests/samples/incident-workflow.yaml -f $root/manifests/samples/route.yaml
  kubectl get wfd,er,lsn -A
  kubectl port-forward -n temporal svc/temporal-frontend 7233 8233 &   # UI: http://localhost:8233
  kubectl port-forward -n temporal-flow svc/tflow-listener-temporal-flow-webhook 8080 &
  curl -X POST localhost:8080/events -H 'Content-Type: application/json' \\
    -d '{"eventType": "incident", "source": "monitoring", "message": "Critical system failure"}'
  tflow runs list --address localhost:7233
Remove it all with: kind delete cluster --name $cluster
NEXT
