#!/bin/bash
# The Microcontroller Segmentation set as the real-photo benchmark (docs/results/real_photos.md):
# 149 smartphone photos (800x600) of four development boards (Arduino Nano, ESP8266, Heltec
# ESP32 LoRa, Raspberry Pi 3) on desks, 178 objects drawn as labelme polygons by Gilbert Tanner.
# Source: github.com/TannerGilbert/Detectron2-Train-a-Instance-Segmentation-Model, folder
# "Microcontroller Segmentation/" (train/ 142 and test/ 7 labelme files beside their photos);
# the same photos are in the author's Tensorflow-Object-Detection-API-Train-Model repository
# under the MIT licence. Check the terms yourself before you redistribute them.
#
# It runs the user's path: `centermask convert --from labelme` with a validation split of
# every 5th photo by file name (120 train / 29 val), then `check-data` with the CPU recipe's
# ceiling. The data stays out of the repository.
#
#   scripts/data/prepare_microcontroller.sh SOURCE_FOLDER OUT
#   (SOURCE_FOLDER holds train/ and test/; OUT gets photos/, photos/train.json, photos/val.json)
set -euo pipefail
if [ $# -ne 2 ]; then
  sed -n '2,15p' "$0" >&2
  exit 2
fi
src=$1 out=$2
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${CENTERMASK:-$repo/build/apps/centermask}
for split in train test; do
  [ -d "$src/$split" ] || { echo "error: $src/$split: no such folder (the source's train/ and test/)" >&2; exit 1; }
done
mkdir -p "$out/photos"
# One folder for both: the split is made again, every 5th photo (the source's test/ has 7).
cp -f "$src"/train/* "$src"/test/* "$out/photos/"
"$bin" convert --from labelme --input "$out/photos" --out "$out/photos/train.json" \
  --val-every 5 --val-out "$out/photos/val.json" --overwrite
"$bin" check-data --gt "$out/photos/train.json" --images "$out/photos" \
  --config "$repo/configs/centermask_demo_cpu.yaml"
