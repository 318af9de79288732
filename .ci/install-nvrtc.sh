#!/usr/bin/env bash
# Installs NVRTC (CUDA 12.9, from PyPI) into .cache/nvrtc so the CUDA compile check
# (runtime/tests/cuda_nvrtc.rs) can run without a GPU or a CUDA toolkit.
#
# Idempotent: when the library is already there it only prints its path.
# Prints the absolute path of libnvrtc.so.12 on its last line; export it as
# KILN_NVRTC (a file or its folder) for kiln to load it by absolute path, e.g.
#   export KILN_NVRTC="$(.ci/install-nvrtc.sh | tail -n1)"
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="12.9.86"
DIR=".cache/nvrtc"
LIB_DIR="$DIR/nvidia/cuda_nvrtc/lib"
STAMP="$DIR/.installed-$VERSION"

find_lib() {
    # The real library (not the *.alt.so* copies), whatever its minor suffix.
    find "$LIB_DIR" -maxdepth 1 -name 'libnvrtc.so.12*' ! -name '*alt*' 2>/dev/null | sort | head -n1
}

if [[ -f "$STAMP" && -n "$(find_lib)" ]]; then
    echo "nvrtc $VERSION already installed in $DIR" >&2
else
    PY="${PYTHON:-python3}"
    echo "installing nvidia-cuda-nvrtc-cu12==$VERSION into $DIR" >&2
    rm -rf "$DIR"
    mkdir -p "$DIR"
    "$PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
        --target "$DIR" "nvidia-cuda-nvrtc-cu12==$VERSION" >&2
    # The *.alt.so* copies are not needed (about 110 MB).
    find "$LIB_DIR" -maxdepth 1 -name '*alt*' -delete
    touch "$STAMP"
fi

LIB="$(find_lib)"
if [[ -z "$LIB" ]]; then
    echo "error: no libnvrtc.so.12* under $LIB_DIR after installing" >&2
    exit 1
fi
# libnvrtc finds libnvrtc-builtins next to itself (RUNPATH=$ORIGIN): keep them together.
if ! ls "$LIB_DIR"/libnvrtc-builtins.so.* >/dev/null 2>&1; then
    echo "error: libnvrtc-builtins is missing from $LIB_DIR" >&2
    exit 1
fi
echo "$(cd "$(dirname "$LIB")" && pwd)/$(basename "$LIB")"
