#!/usr/bin/env bash
# A fuzz campaign over one target, in chunks (docs/robustness.md):
#   fuzz/campaign.sh TARGET TOTAL_EXECS FIRST_SEED LOG [BINARY]
# Runs the in-repo fuzzer (target/release/examples/fuzz, or BINARY) in chunks of 25,000
# executions, seeds FIRST_SEED, FIRST_SEED+1, ...; appends each chunk's JSON summary to LOG.
# A chunk that dies (abort: memory cap, time limit, or a crash outside catch_unwind) leaves its
# current input behind: it is copied to fuzz/artifacts/ as a finding and the campaign goes on.
set -u
target=$1 total=$2 seed=$3 log=$4
bin=${5:-target/release/examples/fuzz}
chunk=25000
done_execs=0
scratch_root=${RTB_FUZZ_SCRATCH:-/dev/shm}
mkdir -p fuzz/artifacts
while [ "$done_execs" -lt "$total" ]; do
  scratch="$scratch_root/rtb-fuzz-$target-$seed"
  "$bin" --target "$target" --execs "$chunk" --seed "$seed" --scratch "$scratch" \
    --artifacts fuzz/artifacts >>"$log" 2>>"$log.stderr"
  rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
    if [ -f "$scratch/current-$target" ]; then
      cp "$scratch/current-$target" "fuzz/artifacts/$target-exit$rc-seed$seed"
    fi
    echo "{\"seed\": $seed, \"target\": \"$target\", \"died\": $rc}" >>"$log"
    rm -rf "$scratch"
  fi
  done_execs=$((done_execs + chunk))
  seed=$((seed + 1))
done
