#!/usr/bin/env bash
# The CUDA checks and measurements, in one call on a lent GPU machine (which has CUDA, no
# Rust): the binaries are built here with `--features cuda`, stripped into .devbin/ and
# carried (docs/performance.md, "CUDA", says how). Every step runs even if one before fails;
# the log and the JSON go to $OUT. Usage: bash benches/device/cuda_check.sh [B] [repeats]
# (QUICK=1: the checks and the main bench only, no variants, shapes or ncu).
set -u
BIN=${BIN:-.devbin}
OUT=${OUT:-/tmp/cuda_out}
B=${1:-1048576}
REPEATS=${2:-50}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
step() { echo; echo "== $* ($(date +%T))"; }
exec > >(tee "$OUT/log.txt") 2>&1
step machine
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem,clocks.max.mem,temperature.gpu,power.draw --format=csv
ls /usr/local/cuda/lib64/libnvrtc.so* 2>&1 | head -3
uptime; nproc
step tests
timeout 150 "$BIN/kernels" --ignored nvrtc cuda 2>&1 | tail -20
timeout 100 "$BIN/gradcheck" --ignored cuda 2>&1 | tail -20
step gradcheck
for dt in f32 f64; do
  "$BIN/rtb-trustpcl" gradcheck --device cuda --dtype $dt --batch 65536 --steps 100 > /tmp/gc.txt 2>&1
  echo "gradcheck $dt rc $?"; grep -iE "cpu-vs-cuda|fail|hold|rror" /tmp/gc.txt | head -30
done
step bench B=$B
"$BIN/rtb-trustpcl" bench --device cuda --batch "$B" --steps 100 --repeats "$REPEATS" --dtype both --json > "$OUT/bench.json"
echo "bench json rc $?"
"$BIN/rtb-trustpcl" bench --device cuda --batch "$B" --steps 100 --repeats "$REPEATS" --dtype both
if [ "${QUICK:-0}" = 1 ]; then step end; exit 0; fi
# Variants of the same arithmetic (kernels.cu's macros, the grid): the cross-device checks,
# then the bench's kernel rows, each.
while IFS='|' read -r name grid opts; do
  step "variant $name: grid ${grid:-resident}, ${opts:-defaults}"
  export RTB_TRUSTPCL_CUDA_GRID=$grid RTB_TRUSTPCL_CUDA_OPTIONS=$opts
  "$BIN/rtb-trustpcl" gradcheck --device cuda --batch 65536 --steps 100 > /tmp/gc.txt 2>&1 </dev/null
  echo "gradcheck rc $?"; grep -iE "fail|rror" /tmp/gc.txt | head -5
  "$BIN/rtb-trustpcl" bench --device cuda --batch "$B" --steps 100 --repeats 20 --dtype both </dev/null 2>&1 | grep -vE "^bench --batch|^kernel|^$"
done <<'VARIANTS'
f64-unroll2||-DROW_UNROLL_F64=2
vector-fill||-DFILL_STORES=1
sums-full-grid|full|
VARIANTS
unset RTB_TRUSTPCL_CUDA_GRID RTB_TRUSTPCL_CUDA_OPTIONS
# Other shapes: four times the rows; odd rows (T = 37: rows start off the 16-byte boundaries).
for shape in "4194304 100" "2097152 37"; do
  set -- $shape
  step "bench B=$1 T=$2"
  "$BIN/rtb-trustpcl" bench --device cuda --batch "$1" --steps "$2" --repeats 20 --dtype both </dev/null 2>&1 | grep -vE "^bench --batch|^kernel|^$"
done
step ncu DRAM bytes, B=$B
timeout 150 ncu --clock-control none --metrics dram__bytes_read.sum,dram__bytes_write.sum,gpu__time_duration.sum \
  --kernel-name regex:"row_sums|fill_dense|copy_ref|read_ref" --launch-count 120 --csv \
  "$BIN/rtb-trustpcl" bench --device cuda --dtype both --batch "$B" --steps 100 --repeats 1 > /tmp/ncu.csv 2>&1
echo "ncu rc $?"
cp /tmp/ncu.csv "$OUT/ncu.csv"
python3 - <<'PY'
import csv, collections
rows = [r for r in csv.reader(open("/tmp/ncu.csv")) if len(r) > 10 and r[0] != "ID"]
# Per launch (ID): kernel name and its three metrics, in launch order.
launches = collections.OrderedDict()
for r in rows:
    launches.setdefault(r[0], {"name": r[4]})[r[-3]] = float(r[-1].replace(",", ""))
print(f"{'launch':>6} {'kernel':<16} {'read MB':>9} {'write MB':>9} {'us':>8} {'GB/s':>7}")
for i, l in launches.items():
    rd, wr, ns = l.get("dram__bytes_read.sum", 0), l.get("dram__bytes_write.sum", 0), l.get("gpu__time_duration.sum", 1)
    print(f"{i:>6} {l['name'][:16]:<16} {rd/1e6:9.1f} {wr/1e6:9.1f} {ns/1e3:8.1f} {(rd+wr)/ns:7.0f}")
PY
step end
