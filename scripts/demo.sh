#!/usr/bin/env bash
# The main job on the embedded default data, from a fresh machine: set up, generate
# Fashion-MNIST-Seg, train FCN-8s briefly, segment a folder of images, train the DCGAN briefly and
# write samples. Everything lands under outputs/demo/ (override with DEMO_OUT).
# Time budgets per training run (Lightning's DD:HH:MM:SS): SEG_TIME, GAN_TIME.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export NO_ALBUMENTATIONS_UPDATE=1 WANDB_SILENT=true
OUT="${DEMO_OUT:-outputs/demo}"
SEG_TIME="${SEG_TIME:-00:00:04:00}"
GAN_TIME="${GAN_TIME:-00:00:03:00}"
PATH="$PWD/.venv/bin:$PATH"

latest_checkpoint() {  # newest last.ckpt of a run name
    # No `| head` here or below: under pipefail an early-closing head makes the writer's SIGPIPE
    # fail the whole script.
    local newest
    newest=$(ls -t "$OUT"/runs/"$1"/version_*/checkpoints/last.ckpt)
    echo "${newest%%$'\n'*}"
}

echo "== 1/4 seg fit: FCN-8s on Fashion-MNIST-Seg (stops after $SEG_TIME)"
seg fit --config configs/seg/fcn8s_fashion.yaml --trainer.default_root_dir "$OUT/runs" \
    --trainer.max_time "$SEG_TIME" --trainer.enable_progress_bar false

echo "== 2/4 seg predict: masks and overlays for a folder of validation canvases"
mkdir -p "$OUT/seg_input"
mapfile -t canvases < <(find data/fashion_seg/val/images -name '*.png' | sort)
cp "${canvases[@]:0:16}" "$OUT/seg_input/"
seg predict --ckpt_path "$(latest_checkpoint seg)" --input "$OUT/seg_input" \
    --output "$OUT/seg_predictions"

echo "== 3/4 gan fit: DCGAN on Fashion-MNIST (stops after $GAN_TIME)"
gan fit --config configs/gan/dcgan_fashion.yaml --trainer.default_root_dir "$OUT/runs" \
    --trainer.max_time "$GAN_TIME" --trainer.enable_progress_bar false

echo "== 4/4 gan sample: grid, single images and interpolations"
gan sample --ckpt_path "$(latest_checkpoint gan)" --num 64 --seed 0 --interpolate 8 \
    --output "$OUT/gan_samples"

echo
echo "Done. Runs (metrics.csv, config.yaml, checkpoints/, images/, wandb/): $OUT/runs"
echo "Segmentation masks and overlays: $OUT/seg_predictions"
echo "GAN sample grid: $OUT/gan_samples/grid.png"
