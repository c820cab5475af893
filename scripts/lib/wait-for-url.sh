# Sourced, not run. wait_for_url URL: waits up to 10 s for URL to answer 2xx (a server the
# calling script just started in the background); returns non-zero if it never does.
wait_for_url() {
  local url="$1"
  for _ in $(seq 1 100); do
    curl -sf "$url" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}
