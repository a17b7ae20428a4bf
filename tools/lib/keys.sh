# Service keys for a local stack (sourced): a fresh key per service, and the digests every
# service accepts, each under its service's name (QAI_SERVICE_KEY_SHA256, README "Security").
#
#   source tools/lib/keys.sh
#   qai_service_keys                                  # exports QAI_SERVICE_KEY_SHA256
#   env QAI_API_KEY="$(qai_service_key messages)" build/services/messages/qai-messages

qai_service_keys() {
  local name key entries=()
  for name in projects messages orchestrator sandbox; do
    key="qai-$name-$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
    export "QAI_KEY_${name^^}=$key"
    entries+=("$name=$(printf %s "$key" | sha256sum | cut -d' ' -f1)")
  done
  QAI_SERVICE_KEY_SHA256=$(IFS=,; echo "${entries[*]}")
  export QAI_SERVICE_KEY_SHA256
}

# qai_service_key NAME: the key qai_service_keys made for NAME.
qai_service_key() {
  local var="QAI_KEY_${1^^}"
  printf %s "${!var:?qai_service_keys first}"
}
