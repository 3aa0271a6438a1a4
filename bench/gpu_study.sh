#!/usr/bin/env bash
# The GPU measurements of issue 20 in one command, on a CUDA machine whose Python has torch,
# lightning and timm, from the project's root:
#
#   bash ../shared/gpu/pack.sh                  # here: CamVid, the Lite0 weights, missing wheels
#   source .gpu/unpack.sh && bash bench/gpu_study.sh      # there
#
# 1. the device studies (data loader, model step, fit; eager and compiled; batch 8 and 32);
# 2. the 100-epoch CamVid recipe: wall seconds of `seg fit`, then the test mIoU of its best
#    checkpoint with flip TTA.
# Results go to $OUT (default bench/runs/gpu): the benchmarks' .md/.json, recipe.log.
# STAGES picks the parts (default "camvid gan recipe"), so that a machine lent for short calls
# can run them one call each: STAGES=recipe bash bench/gpu_study.sh.
set -euo pipefail
OUT="${OUT:-bench/runs/gpu}"
CAMVID="${CAMVID:?set CAMVID to the CamVid folder (source .gpu/unpack.sh sets it)}"
WORKERS="${WORKERS:-14}"
STAGES="${STAGES:-camvid gan recipe}"
for stage in $STAGES; do
    case "$stage" in
        camvid | gan | recipe) ;;
        *) echo "gpu_study.sh: unknown stage '$stage' in STAGES (expected camvid, gan, recipe)" >&2
           exit 2 ;;
    esac
done
mkdir -p "$OUT"
wanted() { [[ " $STAGES " == *" $1 "* ]]; }

if wanted camvid; then
    python3 -m bench.throughput_camvid --device cuda --data-root "$CAMVID" \
        --workers "$WORKERS" --results-dir "$OUT"
fi
if wanted gan; then
    python3 -m bench.throughput_gan --device cuda --data-root "$CAMVID/train" \
        --workers "$WORKERS" --results-dir "$OUT"
fi
wanted recipe || exit 0

start=$(date +%s)
python3 -m seg.console fit --config configs/seg/camvid_fcn8s_lite0.yaml --data.root "$CAMVID" \
    --data.num_workers "$WORKERS" --trainer.default_root_dir "$OUT/runs" \
    --trainer.enable_progress_bar false --wandb false 2>&1 | tee "$OUT/recipe.log"
echo "recipe: seg fit took $(($(date +%s) - start)) s (wall, start-up and validation included)" \
    | tee -a "$OUT/recipe.log"
best=$(ls -t "$OUT"/runs/seg/version_*/checkpoints/best-*.ckpt)
python3 -m seg.console test --config configs/seg/camvid_fcn8s_lite0.yaml --data.root "$CAMVID" \
    --ckpt_path "${best%%$'\n'*}" --model.tta true --trainer.default_root_dir "$OUT/runs" \
    --wandb false 2>&1 | tee -a "$OUT/recipe.log"
