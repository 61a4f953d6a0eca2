#!/usr/bin/env bash
# Installs every build, test and run dependency of Galvatron from Debian's packages.
# Idempotent: when everything is already installed it prints one line and exits.
set -euo pipefail

PACKAGES=(
  # toolchain
  cmake ninja-build g++ git
  # LLVM / MLIR 22 (lit comes from llvm-22-tools; FileCheck, not from mlir-22-tools)
  llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools
  # libFuzzer for the importer fuzz target
  clang-22 libclang-rt-22-dev
  # ONNX import
  libonnx-dev libonnx-testdata libprotobuf-dev protobuf-compiler
  # program file format
  libflatbuffers-dev flatbuffers-compiler
  # runtime: BLAS and MPI
  libopenblas-dev libopenmpi-dev openmpi-bin
  # launching under Slurm (the srun test starts a one-node cluster)
  slurm-wlm munge
  # unit tests
  libgtest-dev
  # reference models and data for tests (Debian's python, not PyPI)
  python3 python3-numpy python3-torch python3-onnx
  # the demo's training text: the King James Bible (public domain)
  bible-kjv bible-kjv-text
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
