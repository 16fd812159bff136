#!/usr/bin/env bash
# One GPU session for issue 27: every check that needs a GPU, in order, each under its own timeout, all output under
# $OUT (at most 8 files: summary.txt, tests.log, floor.log, quantus.log, profile.log, profile.json, zoo.log, zoo.tar.gz):
#   tests    the CUDA sandbox tests, sandboxed (no --trusted): tests/harness/worker/test_cuda_worker.py and
#            tests/metrics/test_devices.py
#   floor    bench/gpu_throughput.py on WideResNet-28-10 (APGD-CE, then the explain part), against the peak of the math
#            actually used (last line: ratio_to_floor: R)
#   quantus  bench/metrics_vs_quantus.py --device cuda (last line: min speedup: S max abs diff: D)
#   profile  bench/profile_run.py: one n=1000 evaluation's stage times, GPU utilisation, the explain stage's profile
#   variants the floor bench's attack again in channels-last and with cuDNN benchmarking (appended to floor.log)
#   zoo      robint-bench zoo --eval-only --attack standard --device cuda on the trained zoo models the archive holds
#            no AutoAttack-standard run of (harness.pipeline.zoo.unevaluated), with the time left; their archive files
#            and database in zoo.tar.gz
#
#   bash bench/gpu_session.sh prepare        here, where pip works: .gpu/whl (Python 3.12 wheels of what the device
#                                            image lacks) and .gpu/data (Fashion-MNIST); prints what will travel
#   bash bench/gpu_session.sh                on the device (tool `run`, carry [".gpu"], timeout_s 600)
#   STEPS=zoo BUDGET_S=240 bash bench/gpu_session.sh    a later call: some steps only, with a smaller budget
#   TINY=1 PYTHON=.venv/bin/python bash bench/gpu_session.sh    the same steps on a CPU with tiny sizes
#
# Environment: BUDGET_S (seconds for the whole command, default 560: under the device's 600 s per command; each step
# gets min(its cap, what is left)), STEPS (default "tests floor quantus profile variants zoo"), TINY (1: tiny sizes on the CPU),
# ZOO_MIN_S (default 300: about one zoo model's n=1000 evaluation on a GPU; the zoo step is skipped with less left),
# FMNIST_DIR (Fashion-MNIST's .gz files, default Debian's; absent there: .gpu/data is unpacked into ./data),
# PYTHON (default python3), OUT (default $TMPDIR/robint-gpu-session, outside the tree that travels; the device sets it).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
PY=${PYTHON:-python3}
SITE=/tmp/robint-site
# the packages the project needs that the device image lacks (KINDS.md's list), at the versions the venv here has;
# opencv-python is not among them: the image's opencv-python-headless provides cv2
WHEELS="captum pyautoattack robustbench geotorch gdown beautifulsoup4 soupsieve quantus cachetools shap slicer sqlalchemy
submitit"
FMNIST=${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}  # Debian's dataset-fashion-mnist

prepare() {
    local py=${PYTHON:-$ROOT/.venv/bin/python} pins
    mkdir -p .gpu/whl .gpu/data && rm -f .gpu/whl/*.whl
    pins=$("$py" -c 'import sys, importlib.metadata as m; print(" ".join(f"{n}=={m.version(n)}" for n in sys.argv[1:]))' \
        $WHEELS) || { echo "error: $py lacks one of: $WHEELS -- run make setup first"; exit 2; }
    # shellcheck disable=SC2086
    "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .gpu/whl $pins || exit 2
    # pyautoattack's wheel ships a 45 MB example model (examples/model_test.pt) the package never loads: drop the
    # examples' data files (and their RECORD lines), so that the working tree fits the device's 64 MiB
    "$py" - .gpu/whl/pyautoattack-*.whl <<'EOF' || exit 2
import sys, zipfile, pathlib
path = pathlib.Path(sys.argv[1])
drop = lambda name: "/examples/" in name and name.endswith((".pt", ".h5"))
slim = path.with_suffix(".slim")
with zipfile.ZipFile(path) as src, zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as dst:
    for info in src.infolist():
        if drop(info.filename):
            continue
        data = src.read(info)
        if info.filename.endswith(".dist-info/RECORD"):
            data = b"".join(line for line in data.splitlines(True) if not drop(line.split(b",")[0].decode()))
        dst.writestr(info, data)
slim.replace(path)
EOF
    # Fashion-MNIST as xz (26 MiB instead of gzip's 30: the tree, the wheels and the data must fit in 64 MiB)
    rm -f .gpu/data/*
    for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
        if [ -f "$FMNIST/$f.gz" ]; then
            gzip -dc "$FMNIST/$f.gz"
        elif [ -f "data/$f.gz" ]; then
            gzip -dc "data/$f.gz"
        elif [ -f "data/FashionMNIST/raw/$f" ]; then
            cat "data/FashionMNIST/raw/$f"
        else
            echo "error: Fashion-MNIST $f not found" >&2
            exit 2
        fi | xz -9e -T1 >".gpu/data/$f.xz" || exit 2
    done
    local tree carry
    tree=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 du -cb 2>/dev/null |
        awk '/total$/ {s += $1} END {print s}')
    carry=$(du -sb .gpu | cut -f1)
    echo "prepared .gpu: $(ls .gpu/whl | wc -l) wheels, $(ls .gpu/data | wc -l) data files"
    echo "travels: working tree $((tree / 1048576)) MiB + .gpu $((carry / 1048576)) MiB" \
        "= $(((tree + carry) / 1048576)) MiB (limit 64)"
    if ((tree + carry > 64 * 1048576)); then echo "error: over the device's 64 MiB"; exit 2; fi
    echo 'next: device run, command "bash bench/gpu_session.sh", carry [".gpu"], timeout_s 600'
}

if [ "${1:-}" = prepare ]; then prepare; exit 0; fi

START=$(date +%s)
BUDGET_S=${BUDGET_S:-560}
STEPS=${STEPS:-tests floor quantus profile variants zoo}
TINY=${TINY:-0}
ZOO_MIN_S=${ZOO_MIN_S:-300}
OUT=${OUT:-${TMPDIR:-/tmp}/robint-gpu-session}
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
export PYTHONUNBUFFERED=1

say() { echo "$*" | tee -a "$SUMMARY"; }
left() { echo $((BUDGET_S - ($(date +%s) - START))); }

setup() {
    if [ ! -f "$FMNIST/t10k-images-idx3-ubyte.gz" ] && compgen -G ".gpu/data/*.xz" >/dev/null; then
        # ./data: where the CLI, the tests and the benches look (the loader checks each file's sha256)
        mkdir -p data/FashionMNIST/raw
        "$PY" -c 'import lzma, pathlib, sys
for f in map(pathlib.Path, sys.argv[1:]):
    out = pathlib.Path("data/FashionMNIST/raw", f.stem)
    if not out.is_file():  # through a temporary file: an interrupted unpacking leaves no partial file behind
        out.with_suffix(".tmp").write_bytes(lzma.decompress(f.read_bytes()))
        out.with_suffix(".tmp").replace(out)' .gpu/data/*.xz || { say "error: unpacking .gpu/data failed"; exit 2; }
    fi
    if [ -f "$SITE/.installed" ]; then
        export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
    elif ! "$PY" -c 'import sys, importlib.util as u; sys.exit(any(u.find_spec(n) is None for n in sys.argv[1:]))' \
        captum quantus pyautoattack robustbench shap sqlalchemy submitit; then
        if ! compgen -G ".gpu/whl/*.whl" >/dev/null; then
            say "error: packages missing and no .gpu/whl -- run 'bash bench/gpu_session.sh prepare' here and carry .gpu"
            exit 2
        fi
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .gpu/whl/*.whl \
            >>"$SUMMARY" 2>&1 || { say "error: installing .gpu/whl failed (see above)"; exit 2; }
        touch "$SITE/.installed"
        export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
    fi
    export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
    if [ "$(id -u)" = 0 ]; then  # the sandboxed worker runs as nobody: what it imports and reads must be readable
        chmod -R a+rX "$ROOT/harness" "$ROOT/metrics" "$ROOT/submissions" "$ROOT/tests" 2>/dev/null
        [ -d data ] && chmod -R a+rX data
        [ -d "$SITE" ] && chmod -R a+rX "$SITE"
    fi
    "$PY" - <<'EOF' >>"$SUMMARY" 2>&1 || { say "error: the environment does not import (see above)"; exit 2; }
import importlib.metadata as m, platform, torch
device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version()}, device {device}")
names = ["numpy", "captum", "quantus", "pyautoattack", "robustbench", "shap", "sqlalchemy", "scipy", "pandas"]
print("packages: " + ", ".join(f"{n} {m.version(n)}" for n in names))
import harness, metrics  # noqa: E401,F401  (the checkout imports)
print(f"harness from {harness.__file__}")
EOF
}

DEVICE=cpu
if "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then DEVICE=cuda; fi
if [ "$DEVICE" = cpu ] && [ "$TINY" != 1 ]; then
    echo "error: no CUDA device -- on a CPU run the tiny dry run: TINY=1 bash bench/gpu_session.sh"
    exit 2
fi
: >"$SUMMARY"
say "# gpu_session $(date -u +%FT%TZ) at $(git rev-parse --short HEAD 2>/dev/null || echo '?'): steps '$STEPS'," \
    "device $DEVICE, TINY=$TINY, budget ${BUDGET_S}s"
setup
say "setup done after $(( $(date +%s) - START ))s"

# step NAME CAP CMD...: run CMD with the timeout min(CAP, time left - 5), output appended to $OUT/NAME.log (or
# $OUT/$LOG.log when LOG is set)
step() {
    local name=$1 cap=$2 t rc began log
    shift 2
    log=$OUT/${LOG:-$name}.log
    t=$(($(left) - 5))
    ((t > cap)) && t=$cap
    if ((t < 20)); then
        say "$name: skipped ($(left)s of the budget left)"
        return 0
    fi
    began=$(date +%s)
    echo "\$ $*" >>"$log"
    timeout --kill-after=10 "$t" "$@" >>"$log" 2>&1
    rc=$?
    local status=ok
    ((rc == 124 || rc == 137)) && status="TIMED OUT at ${t}s"
    ((rc != 0 && rc != 124 && rc != 137)) && status="FAILED (exit $rc)"
    say "$name: $status in $(($(date +%s) - began))s; $(grep -v '^\s*$' "$log" | tail -n 1 | cut -c1-300)"
    return 0
}

has() { [[ " $STEPS " == *" $1 "* ]]; }

if has tests; then
    rm -f "$OUT/tests.log"
    step tests 150 "$PY" -m pytest -p no:cacheprovider -v -rA tests/harness/worker/test_cuda_worker.py tests/metrics/test_devices.py
fi

if has floor; then
    rm -f "$OUT/floor.log"
    if [ "$TINY" = 1 ]; then
        step floor 240 "$PY" bench/gpu_throughput.py --device "$DEVICE" --models wrn-28-10 --parts attack --batch 2 --iters 1
    else
        step floor 120 "$PY" bench/gpu_throughput.py --device cuda --models wrn-28-10
    fi
fi

if has quantus; then
    rm -f "$OUT/quantus.log"
    if [ "$TINY" = 1 ]; then
        step quantus 300 "$PY" bench/metrics_vs_quantus.py --device "$DEVICE" --n 8
    else
        step quantus 120 "$PY" bench/metrics_vs_quantus.py --device cuda
    fi
fi

if has profile; then
    rm -f "$OUT/profile.log" "$OUT/profile.json"
    if [ "$TINY" = 1 ]; then
        step profile 300 "$PY" bench/profile_run.py --device "$DEVICE" --n-examples 4 --attack apgd-ce --methods saliency \
            --metrics deletion_auc,sparseness --n-explain 2 --no-featurevis --top 10 --json "$OUT/profile.json"
    else
        step profile 300 "$PY" bench/profile_run.py --device cuda --n-examples 1000 --json "$OUT/profile.json"
    fi
fi

if has variants; then  # appended to floor.log: where the gap to the floor might close (the harness runs neither)
    if [ "$TINY" = 1 ]; then
        LOG=floor step variants 120 "$PY" bench/gpu_throughput.py --device "$DEVICE" --models fmnist_standard \
            --batch 2 --iters 1 --n-explain 1 --ig-steps 2 --channels-last --cudnn-benchmark
    else
        LOG=floor step variants 45 "$PY" bench/gpu_throughput.py --device cuda --models wrn-28-10 --parts attack --channels-last
        LOG=floor step variants 45 "$PY" bench/gpu_throughput.py --device cuda --models wrn-28-10 --parts attack --cudnn-benchmark
    fi
fi

if has zoo; then
    rm -f "$OUT/zoo.log" "$OUT/zoo.tar.gz"
    ZOO_WORK=$(mktemp -d /tmp/robint-zoo.XXXXXX)
    mkdir -p "$ZOO_WORK/archive"
    # the trained zoo models whose archive (results/archive, in the tree) has no run under the spec's settings
    # (AutoAttack standard, n=1000) yet: those evaluated on the CPU since are not evaluated again
    models=$("$PY" -c '
from harness.pipeline.zoo import unevaluated
from harness.train.zoo import load_spec
print(",".join(unevaluated(load_spec("submissions/zoo/zoo.json"), overrides={"attack": "standard"})))')
    if [ -z "$models" ]; then
        say "zoo: no trained zoo model is left to evaluate with AutoAttack standard"
    elif [ "$TINY" != 1 ] && (($(left) < ZOO_MIN_S)); then
        say "zoo: skipped: $(left)s left, a model needs about ${ZOO_MIN_S}s on a GPU (STEPS=zoo in a call with more, or the CPU)"
    elif [ "$TINY" = 1 ]; then
        step zoo 400 "$PY" -m harness zoo --eval-only --attack standard --device "$DEVICE" --only "${models%%,*}" \
            --n-examples 4 --metrics sparseness --methods saliency --no-featurevis --quiet \
            --db "sqlite:///$ZOO_WORK/zoo.db" --archive "$ZOO_WORK/archive"
    else
        step zoo 100000 "$PY" -m harness zoo --eval-only --attack standard --device cuda --only "$models" --quiet \
            --db "sqlite:///$ZOO_WORK/zoo.db" --archive "$ZOO_WORK/archive"
    fi
    if [ -f "$OUT/zoo.log" ]; then  # the step ran: what it stored, archived and left in its database
        say "zoo: $(grep -c '^eval .*: stored' "$OUT/zoo.log") of $(echo "$models" | tr ',' '\n' | grep -c .) models stored"
        tar -czf "$OUT/zoo.tar.gz" -C "$ZOO_WORK" archive zoo.db 2>/dev/null ||
            tar -czf "$OUT/zoo.tar.gz" -C "$ZOO_WORK" archive
        if (($(stat -c %s "$OUT/zoo.tar.gz") > 15 * 1048576)); then  # the device returns files up to 16 MiB
            tar -czf "$OUT/zoo.tar.gz" -C "$ZOO_WORK" archive
            say "zoo: the database was left out of zoo.tar.gz (over 15 MiB)"
        fi
    fi
    rm -rf "$ZOO_WORK"
fi

say "done in $(($(date +%s) - START))s of ${BUDGET_S}s"
