# Sourced by the scripts that test or measure a real edgellmd:
# start_edgellmd MODEL [FLAGS...] starts $edgellmd on MODEL with gRPC on the
# Unix socket $work/d.sock and the HTTP API on a port it picks, logging to
# $work/log, and sets $pid and $port. Needs $edgellmd and $work.
. "$(dirname "${BASH_SOURCE[0]}")/../../deploy/logged_port.sh"
start_edgellmd() {
  local model=$1
  shift
  "$edgellmd" --model "$model" --listen "unix:$work/d.sock" --http-listen 127.0.0.1:0 "$@" 2> "$work/log" &
  pid=$!
  # The socket is bound before the HTTP API starts, so gRPC callers may connect from here on.
  port=$(logged_port "$work/log" "HTTP API on port " "$pid") || exit 1
}
