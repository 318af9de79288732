#!/usr/bin/env python3
"""Make kiln's embedded, balanced Fashion-MNIST subset from the full IDX files.

Usage:
    python3 make_fashion_subset.py SRC_DIR OUT_DIR [TRAIN_PER_CLASS [TEST_PER_CLASS]]

SRC_DIR holds the four standard files (train-images-idx3-ubyte.gz,
train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz), as
installed by Debian's `dataset-fashion-mnist` package under
/usr/share/datasets/fashion-mnist/ (see fetch_sources.sh for how to get them without
installing). The subset keeps the FIRST N images of each class, in file order, for the
training and the test file separately (defaults: 1000 and 200 per class), and writes the
same four file names to OUT_DIR as standard IDX, gzip level 9 with mtime 0, so the output
is byte-for-byte reproducible.

It prints the golden statistics that runtime/tests/data_pipeline.rs checks (counts per
class, pixel sums, first labels); they are computed here, independently of the Rust loader.
"""

import gzip
import struct
import sys
from pathlib import Path

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
NUM_CLASSES = 10


def read_idx(path):
    raw = gzip.decompress(path.read_bytes())
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        sys.exit(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()})")
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    body = raw[4 + 4 * ndim :]
    size = 1
    for d in dims:
        size *= d
    if len(body) != size:
        sys.exit(f"{path}: header says {size} bytes of data, file has {len(body)}")
    return dims, body


def write_idx(path, dims, body):
    header = bytes([0, 0, 0x08, len(dims)]) + struct.pack(">" + "I" * len(dims), *dims)
    path.write_bytes(gzip.compress(header + body, compresslevel=9, mtime=0))


def subset(src, out, split, per_class):
    img_name, lab_name = FILES[split]
    idims, images = read_idx(src / img_name)
    ldims, labels = read_idx(src / lab_name)
    n, h, w = idims
    if ldims != (n,):
        sys.exit(f"{split}: {n} images but label dims {ldims}")
    taken = [0] * NUM_CLASSES
    keep = []
    for i, label in enumerate(labels):
        if taken[label] < per_class:
            taken[label] += 1
            keep.append(i)
    if any(t != per_class for t in taken):
        sys.exit(f"{split}: not enough images per class for {per_class}: {taken}")
    pixels = h * w
    out_images = b"".join(images[i * pixels : (i + 1) * pixels] for i in keep)
    out_labels = bytes(labels[i] for i in keep)
    write_idx(out / img_name, (len(keep), h, w), out_images)
    write_idx(out / lab_name, (len(keep),), out_labels)
    print(f"{split}: {len(keep)} images of {h}x{w}, {per_class} per class")
    print(f"  pixel sum            {sum(out_images)}")
    per_class_sum = [0] * NUM_CLASSES
    for k, i in enumerate(keep):
        per_class_sum[labels[i]] += sum(out_images[k * pixels : (k + 1) * pixels])
    print(f"  pixel sum per class  {per_class_sum}")
    print(f"  first 20 labels      {list(out_labels[:20])}")
    print(f"  source indices: first {keep[:5]}, last {keep[-1]}")
    for name in (img_name, lab_name):
        print(f"  {name}: {(out / name).stat().st_size} bytes")


def main():
    if len(sys.argv) not in (3, 4, 5):
        sys.exit(__doc__)
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    train_n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    test_n = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    out.mkdir(parents=True, exist_ok=True)
    subset(src, out, "train", train_n)
    subset(src, out, "test", test_n)


if __name__ == "__main__":
    main()
