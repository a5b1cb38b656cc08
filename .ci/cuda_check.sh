#!/usr/bin/env bash
# Compile check for the CUDA kernels on a machine without a GPU: builds the real CUDAExtension
# (csrc/ops.cpp + csrc/cpu/*.cpp + csrc/cuda/*.cu) against a CUDA build of torch and checks that
# the CUDA kernels registered. It cannot run them; tests/test_ops_cuda*.py do that on a GPU.
#
# Environment:
#   CAE_FAST_CUDA_VENV  venv to (re)use for the CUDA torch (5.5 GB); created there if missing.
#                       Unset: a throwaway venv in a temp dir, removed on exit.
#   PYTHON              interpreter that creates the venv (default: python3)
#   MAX_JOBS            parallel compile jobs (default: 2)
set -euo pipefail

TORCH_VERSION=2.14.1
NEED_GB=7  # 5.5 GB installed, plus the build
start=$SECONDS
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if ! command -v nvcc >/dev/null 2>&1; then
  echo "cuda_check: nvcc not found, CUDA compile check skipped"
  exit 0
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cae_fast_cuda_check.XXXXXX")"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

# The toolkit root. nvcc on PATH may be a wrapper script (e.g. /usr/local/bin/nvcc exec'ing
# /usr/local/cuda-X/bin/nvcc), so the root is asked of nvcc itself rather than derived from where
# it is found; the PATH-derived root is only the fallback.
cuda_root() {
  local top
  top="$(cd "$WORK" && : >e.cu && { nvcc --dryrun -c e.cu -o e.o 2>&1 || true; } | sed -n 's/^#\$ TOP=//p' | head -n1)"
  if [[ -n "$top" && -f "$top/include/cuda_runtime.h" ]]; then
    (cd "$top" && pwd -P)
  else
    dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")"
  fi
}
CUDA_HOME="$(cuda_root)"
export CUDA_HOME
if [[ ! -f "$CUDA_HOME/include/cuda_runtime.h" ]]; then
  echo "cuda_check: FAILED: no CUDA toolkit headers under $CUDA_HOME" >&2
  exit 1
fi
echo "cuda_check: CUDA_HOME=$CUDA_HOME ($(nvcc --version | tail -n1))"

VENV="${CAE_FAST_CUDA_VENV:-$WORK/venv}"

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "cuda_check: creating venv $VENV"
  "${PYTHON:-python3}" -m venv "$VENV"
fi
# A CUDA torch with its nvidia-* wheels is 5.5 GB; a pip install that runs out of disk fails half way
# with an OSError, so the space is asked for first and a shortfall said in one line.
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  free_gb=$(df -Pk "$VENV" | awk 'NR==2 {printf "%d", $4 / 1048576}')
  if (( free_gb < NEED_GB )); then
    echo "cuda_check: FAILED: the CUDA torch needs ~$NEED_GB GB in $VENV, only $free_gb GB free there" \
      "(free space, or point CAE_FAST_CUDA_VENV at a venv that has torch==$TORCH_VERSION)" >&2
    exit 1
  fi
fi
# A no-op in a venv that already has these; ninja makes MAX_JOBS parallelism real.
"$VENV/bin/python" -m pip install -q "torch==$TORCH_VERSION" numpy setuptools wheel ninja
echo "cuda_check: venv ready ($((SECONDS - start)) s)"

"$VENV/bin/python" - <<'EOF'
import torch
assert torch.version.cuda is not None, f"torch {torch.__version__} in the check venv is not a CUDA build"
print(f"cuda_check: torch {torch.__version__} (CUDA {torch.version.cuda})")
EOF

# Build in a copy of the working tree (tracked + untracked, not ignored) so no build products land
# in the repo.
SRC="$WORK/src"
mkdir -p "$SRC"
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$REPO" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do if [[ -f "$f" ]]; then printf '%s\0' "$f"; fi; done |
    tar --null -T - -cf -) | tar -C "$SRC" -xf -
else
  (cd "$REPO" && tar --exclude=./build --exclude=./.git --exclude='*.so' -cf - .) | tar -C "$SRC" -xf -
fi

# The toolkit may lack the cuBLAS/cuSPARSE/cuSOLVER headers that ATen/cuda/CUDAContext.h pulls
# in; the venv's nvidia-* wheels ship them. setup.py adds them too; CPATH (searched after every
# -I) keeps this check independent of that.
NV_INCLUDES="$("$VENV/bin/python" - <<'EOF'
import glob, os, sys
dirs = set()
for base in sys.path:
    dirs.update(glob.glob(os.path.join(base, "nvidia", "*", "include")))
print(os.pathsep.join(sorted(d for d in dirs if os.path.isdir(d))))
EOF
)"
export CPATH="${NV_INCLUDES}${CPATH:+:$CPATH}"

build_start=$SECONDS
echo "cuda_check: building cae_fast._C with CUDA (TORCH_CUDA_ARCH_LIST=8.0;9.0, MAX_JOBS=${MAX_JOBS:-2})"
(
  cd "$SRC"
  FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="8.0;9.0" MAX_JOBS="${MAX_JOBS:-2}" \
    "$VENV/bin/python" setup.py -q build_ext --inplace >"$WORK/build.log" 2>&1
) || {
  echo "cuda_check: FAILED: the CUDA build did not compile. Compiler errors:" >&2
  grep -E -m 40 "error|FAILED:" "$WORK/build.log" >&2 || true
  echo "cuda_check: last lines of the build log:" >&2
  tail -n 25 "$WORK/build.log" >&2
  exit 1
}
echo "cuda_check: build ok ($((SECONDS - build_start)) s)"

# Import from the copy (cd there, nothing else on the path) and check the CUDA registrations; the
# CPU kernels of the same .so get a smoke call, since they are the ones this machine can run.
(cd "$SRC" && "$VENV/bin/python" - <<'EOF'
import torch

import cae_fast._C  # noqa: F401  (registers torch.ops.cae_fast)

# Every op csrc/ops.cpp defines must have a CUDA kernel: a new op without one fails here.
ops = sorted({s.name for s in torch._C._jit_get_all_schemas() if s.name.startswith("cae_fast::")})
assert len(ops) >= 5, f"expected the cae_fast op schemas, found {ops}"
missing = [op for op in ops if not torch._C._dispatch_has_kernel_for_dispatch_key(op, "CUDA")]
assert not missing, f"no CUDA kernel registered for {missing}"

x = torch.randn(3, 1, 8, 8)
pcc, mse = torch.ops.cae_fast.pcc_mse(x, x)
assert torch.allclose(pcc, torch.ones(3)) and torch.all(mse == 0), (pcc, mse)
z = x.flatten(1)
d2, idx = torch.ops.cae_fast.nn_ref(z, z[[2, 0]], None)
assert idx[0] == 1 and idx[2] == 0 and d2[0] == 0 and d2[2] == 0, (d2, idx)
print(f"cuda_check: CUDA kernels registered for {', '.join(ops)}")
EOF
)
echo "cuda_check: OK (total $((SECONDS - start)) s)"
