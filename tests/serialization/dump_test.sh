#!/bin/sh
# sluice dump decodes payloads with the schemas stored in the log alone.
# usage: dump_test.sh WRITE_SAMPLE_LOG SLUICE
set -eu
writer=$1
sluice=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$writer" "$dir/log"
# The tool has no generated code for the sample's types.
if grep -q "sluice.dumptest.fb" "$sluice"; then
  echo "FAIL: the sluice binary contains the test schema" >&2
  exit 1
fi
"$sluice" dump "$dir/log" > "$dir/out.jsonl"
cat "$dir/out.jsonl"
expect() {
  if ! sed -n "$1p" "$dir/out.jsonl" | grep -qF -- "$2"; then
    echo "FAIL: line $1 lacks: $2" >&2
    exit 1
  fi
}
expect 1 '"type_name":"dumptest.Trade"'
expect 1 '"codec":2,"codec_name":"flatbuffers"'
expect 1 '"payload":{"flags":[1,2,3],"legs":[{"qty":100,"venue":"XNAS"},{"qty":50,"venue":"XLON"}],"price":{"exponent":-2,"mantissa":12345},"symbol":"ACME","tags":["block","dark"],"trade_id":77}'
expect 2 '"schema_version":3'
expect 2 '"codec":3,"codec_name":"json"'
expect 2 '"payload":{"bid":99.25,"id":5,"venue":"IEX \"lit\""}'
expect 3 '"codec":0,"codec_name":"raw"'
expect 3 '"payload":{"id":6,"qty":-40,"side":"sell"}'
expect 4 '"codec":0,"codec_name":"raw"'
expect 4 '"payload_base64":"b3BhcXVl"'
if sed -n 4p "$dir/out.jsonl" | grep -q payload_error; then
  echo "FAIL: a raw event with no schema is not an error" >&2
  exit 1
fi
expect 5 '"payload_error":"no schema for type id 1000 (unknown type) v1 (json)"'
expect 5 '"payload_base64":"b3BhcXVl"'
# Written before the codec ids were unified (raw was byte 1): still decoded, named raw.
expect 6 '"type_name":"dumptest.OldFill"'
expect 6 '"codec":1,"codec_name":"raw"'
expect 6 '"payload":{"id":7,"qty":12,"side":"buy"}'
echo "ok"
