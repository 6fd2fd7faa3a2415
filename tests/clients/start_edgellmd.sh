# Sourced by the client tests: start_edgellmd MODEL TEMPLATE [FLAGS...] starts
# a real edgellmd with the HTTP API on a port it picks and the API key file
# $work/keys, and sets $pid and $port. Needs $edgellmd and $work.
start_edgellmd() {
  local model=$1 template=$2
  shift 2
  "$edgellmd" --model "$model" --listen "unix:$work/d.sock" --http-listen 127.0.0.1:0 \
    --http-api-keys-file "$work/keys" --chat-template-file "$template" "$@" 2> "$work/log" &
  pid=$!
  port=
  for _ in $(seq 1 1200); do
    port=$(sed -n 's/.*HTTP API on port \([0-9]*\).*/\1/p' "$work/log")
    [ -n "$port" ] && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$work/log"; exit 1; }
    sleep 0.05
  done
  echo "edgellmd never reported its HTTP port"; cat "$work/log"; exit 1
}
