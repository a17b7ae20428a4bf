# Keys for a local stack (sourced): a fresh key per service, the digests every service accepts,
# each under its service's name (QAI_SERVICE_KEY_SHA256), and the page tokens' key
# (QAI_PAGE_TOKEN_KEY). README, "Security".
#
#   source tools/lib/keys.sh
#   qai_stack_keys                        # exports QAI_SERVICE_KEY_SHA256 and QAI_PAGE_TOKEN_KEY
#   env QAI_API_KEY="$(qai_service_key messages)" build/services/messages/qai-messages

qai_stack_keys() {
  local name key entries=()
  for name in projects messages orchestrator sandbox; do
    key="qai-$name-$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
    export "QAI_KEY_${name^^}=$key"
    entries+=("$name=$(printf %s "$key" | sha256sum | cut -d' ' -f1)")
  done
  QAI_SERVICE_KEY_SHA256=$(IFS=,; echo "${entries[*]}")
  QAI_PAGE_TOKEN_KEY=$(head -c 32 /dev/urandom | base64 | tr -d '/+=')
  export QAI_SERVICE_KEY_SHA256 QAI_PAGE_TOKEN_KEY
}

# qai_service_key NAME: the key qai_stack_keys made for NAME.
qai_service_key() {
  local var="QAI_KEY_${1^^}"
  printf %s "${!var:?qai_stack_keys first}"
}

# qai_secret: a fresh random secret, 64 hex digits (32 bytes of entropy; the services refuse an
# HS256 key shorter than 32 bytes), e.g. export QAI_JWT_SECRET=$(qai_secret).
qai_secret() {
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'
}
