# Sourced by the scripts that start a program listening on port 0 and need
# the port it got: logged_port LOG TEXT [PID] prints the number that follows
# TEXT (a fixed string) in LOG once the program has logged it, and fails with
# the log if PID (when given) exits first or a minute passes.
logged_port() {
  local log=$1 text=$2 pid=${3:-} port
  for _ in $(seq 1 600); do
    port=$(awk -v text="$text" '{
      at = index($0, text)
      if (at == 0) next
      rest = substr($0, at + length(text))
      if (match(rest, /^[0-9]+/)) { print substr(rest, 1, RLENGTH); exit }
    }' "$log" 2> /dev/null)
    [ -n "$port" ] && { echo "$port"; return 0; }
    if [ -n "$pid" ] && ! kill -0 "$pid" 2> /dev/null; then
      echo "the program logging to $log exited:" >&2
      cat "$log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "no port after '$text' in $log after a minute:" >&2
  cat "$log" >&2
  return 1
}
