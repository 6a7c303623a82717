#!/usr/bin/env bash
# Starts or stops real nats-server processes on loopback for trying the connectors by hand
# (the tests start their own, from connectors/testing/).
#   scripts/nats-cluster.sh start [DIR]   a 3-node JetStream cluster (ports 4222-4224,
#                                         routes 6222-6224), store and logs under DIR
#                                         (default /tmp/sluice-nats); prints the URLs
#   scripts/nats-cluster.sh single [DIR]  one JetStream node on 127.0.0.1:4222
#   scripts/nats-cluster.sh stop [DIR]    stops what start/single started (by its pid files)
set -euo pipefail
cmd=${1:-}
dir=${2:-/tmp/sluice-nats}
server=$(command -v nats-server || true)
[ -z "$server" ] && [ -x /usr/sbin/nats-server ] && server=/usr/sbin/nats-server
if [ -z "$server" ] && [ "$cmd" != stop ]; then
  echo "nats-server is not installed (apt-get install nats-server)" >&2
  exit 1
fi
start_node() {  # name client_port [cluster_port routes]
  local name=$1 port=$2
  mkdir -p "$dir/$name"
  local args=(-js -a 127.0.0.1 -p "$port" -sd "$dir/$name")
  if [ $# -gt 2 ]; then args+=(-n "$name" --cluster_name sluice --cluster "nats://127.0.0.1:$3" --routes "$4"); fi
  "$server" "${args[@]}" >"$dir/$name/server.log" 2>&1 &
  echo $! >"$dir/$name.pid"
}
case "$cmd" in
  start)
    for i in 0 1 2; do
      routes=""
      for j in 0 1 2; do [ "$j" != "$i" ] && routes+="${routes:+,}nats://127.0.0.1:$((6222 + j))"; done
      start_node "n$i" $((4222 + i)) $((6222 + i)) "$routes"
    done
    echo "nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224"
    ;;
  single)
    start_node single 4222
    echo "nats://127.0.0.1:4222"
    ;;
  stop)
    for f in "$dir"/*.pid; do
      [ -e "$f" ] || continue
      kill "$(cat "$f")" 2>/dev/null || true
      rm -f "$f"
    done
    ;;
  *)
    echo "usage: scripts/nats-cluster.sh start|single|stop [DIR]" >&2
    exit 2
    ;;
esac
