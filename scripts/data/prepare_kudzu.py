#!/usr/bin/env python3
"""Convert the Kudzu dataset (VGG Image Annotator polygons) into COCO instances JSON.

Source: https://github.com/lesc-ufv/kudzu-dataset (MIT licence, Copyright (c) 2021 Michael
Canesche): 40 real photographs (768 px on the long side) of kudzu bugs (Megacopta cribraria)
on plants, one class (labelled "kudzu" in the source, region attribute "insect"), 869 polygons
drawn with the VGG Image Annotator in `train/via_region_data.json` (24 images) and
`val/via_region_data.json` (16 images), images next to each JSON. The photographs carry
Bugwood.org image numbers; the repository states only the MIT licence.

Most instances are small (median area a few hundred pixels) and a few images hold 85-112 bugs:
COCO evaluation keeps 100 detections per image, so even perfect detections score below AP 1.0
on an image with more than 100 instances.

This script needs only the Python 3 standard library. Point it at a copy of that repository
(a clone, or `git archive` of it) and it writes

    OUT/train.json  OUT/val.json  OUT/train/  OUT/val/

with polygons as COCO `segmentation`, `bbox` and `area` from the polygon (shoelace), one
category `kudzu` (id 1), image sizes read from the JPEG headers. The split is deterministic:
all images sorted by their number, every N-th (N = --val-every, default 5; positions N-1,
2N-1, ...) to val, the rest to train; `--keep-source-split` keeps the repository's own
train/val folders instead. Images are copied (or hard-linked with --link).

    python3 scripts/data/prepare_kudzu.py --src /path/to/kudzu-dataset --out data/kudzu/coco
    centermask show --gt data/kudzu/coco/val.json --images data/kudzu/coco/val --out pictures
"""

import argparse
import json
import os
import re
import shutil
import struct
import sys

CATEGORY = {"id": 1, "name": "kudzu", "supercategory": "insect"}
SOURCE_SPLITS = ("train", "val")
LFS_MAGIC = b"version https://git-lfs"


def fail(message):
    sys.exit("prepare_kudzu: error: " + message)


def jpeg_size(path):
    """(width, height) from a baseline/progressive JPEG's SOF marker; errors name the file."""
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(LFS_MAGIC):
        fail(f"{path} is a Git LFS pointer, not an image: fetch the LFS objects first")
    if data[:2] != b"\xff\xd8":
        fail(f"{path} is not a JPEG file")
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            fail(f"{path}: corrupt JPEG marker at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE,
                      0xCF):
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        if marker == 0xE1 and data[i + 4:i + 10] == b"Exif\0\0":
            orientation = exif_orientation(data[i + 10:i + 2 + length])
            if orientation not in (None, 1):
                # VIA draws on the image as the browser shows it; a rotated EXIF image would
                # make the polygons and OpenCV's decoded pixels disagree. The kudzu images
                # have no EXIF block, so this is a guard, not a case handled.
                fail(f"{path}: EXIF orientation {orientation} is not supported")
        i += 2 + length
    fail(f"{path}: no SOF marker found")


def exif_orientation(tiff):
    if len(tiff) < 8:
        return None
    endian = "<" if tiff[:2] == b"II" else ">"
    (offset,) = struct.unpack(endian + "I", tiff[4:8])
    if offset + 2 > len(tiff):
        return None
    (count,) = struct.unpack(endian + "H", tiff[offset:offset + 2])
    for k in range(count):
        entry = tiff[offset + 2 + 12 * k:offset + 14 + 12 * k]
        if len(entry) < 12:
            break
        tag, _type, _count, value = struct.unpack(endian + "HHI4s", entry)
        if tag == 0x0112:
            return struct.unpack(endian + "H", value[:2])[0]
    return None


def polygon_area(xs, ys):
    n = len(xs)
    s = 0.0
    for k in range(n):
        j = (k + 1) % n
        s += xs[k] * ys[j] - xs[j] * ys[k]
    return abs(s) / 2.0


def read_via(src):
    """[(split, file_name, [(xs, ys), ...])] from the repository's VIA JSON files."""
    records = []
    for split in SOURCE_SPLITS:
        json_path = os.path.join(src, split, "via_region_data.json")
        if not os.path.isfile(json_path):
            fail(f"{json_path} not found: --src must be the kudzu-dataset repository root")
        with open(json_path, encoding="utf-8") as f:
            via = json.load(f)
        if "_via_img_metadata" in via:  # VIA 2 project file rather than exported annotations
            via = via["_via_img_metadata"]
        for key, entry in via.items():
            name = entry.get("filename")
            if not name:
                fail(f"{json_path}: entry {key!r} has no filename")
            regions = entry.get("regions", [])
            if isinstance(regions, dict):  # VIA 1 keeps regions in a dict keyed "0", "1", ...
                regions = [regions[k] for k in sorted(regions, key=int)]
            polygons = []
            for r, region in enumerate(regions):
                shape = region.get("shape_attributes", {})
                label = (region.get("region_attributes") or {}).get("insect", CATEGORY["name"])
                if label != CATEGORY["name"]:
                    fail(f"{json_path}: {name} region {r}: unexpected label {label!r}")
                if shape.get("name") != "polygon":
                    fail(f"{json_path}: {name} region {r}: shape {shape.get('name')!r} is not "
                         "a polygon")
                xs = [float(v) for v in shape["all_points_x"]]
                ys = [float(v) for v in shape["all_points_y"]]
                if len(xs) != len(ys):
                    fail(f"{json_path}: {name} region {r}: x and y lists differ in length")
                polygons.append((xs, ys))
            records.append((split, name, polygons))
    return records


def image_number(name):
    m = re.match(r"(\d+)", os.path.basename(name))
    return (int(m.group(1)) if m else sys.maxsize, name)


def convert(src, out, val_every, keep_source_split, link):
    records = sorted(read_via(src), key=lambda rec: image_number(rec[1]))
    names = [rec[1] for rec in records]
    if len(set(names)) != len(names):
        fail("the same file name appears in both source splits")

    splits = {"train": [], "val": []}
    for position, rec in enumerate(records):
        if keep_source_split:
            target = rec[0]
        else:
            target = "val" if (position + 1) % val_every == 0 else "train"
        splits[target].append(rec)

    stats = {"dropped": 0, "clipped": 0}
    for target, recs in splits.items():
        folder = os.path.join(out, target)
        os.makedirs(folder, exist_ok=True)
        images, annotations = [], []
        for image_id, (source_split, name, polygons) in enumerate(recs, start=1):
            source_path = os.path.join(src, source_split, name)
            if not os.path.isfile(source_path):
                fail(f"{source_path} is listed in the annotations but missing")
            width, height = jpeg_size(source_path)
            destination = os.path.join(folder, name)
            if os.path.lexists(destination):
                os.remove(destination)
            if link:
                os.link(source_path, destination)
            else:
                shutil.copyfile(source_path, destination)
            images.append({"id": image_id, "file_name": name, "width": width,
                           "height": height})
            for xs, ys in polygons:
                # VIA stores integer pixel positions; keep points inside the image.
                cx = [min(max(x, 0.0), float(width)) for x in xs]
                cy = [min(max(y, 0.0), float(height)) for y in ys]
                if cx != xs or cy != ys:
                    stats["clipped"] += 1
                area = polygon_area(cx, cy)
                if len(cx) < 3 or area < 1.0:
                    stats["dropped"] += 1
                    continue
                x0, y0, x1, y1 = min(cx), min(cy), max(cx), max(cy)
                flat = [v for point in zip(cx, cy) for v in point]
                annotations.append({
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": CATEGORY["id"],
                    "segmentation": [flat],
                    "area": area,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "iscrowd": 0,
                })
        coco = {
            "info": {
                "description": "Kudzu dataset (lesc-ufv/kudzu-dataset), converted from VIA "
                               "polygons by scripts/data/prepare_kudzu.py",
                "url": "https://github.com/lesc-ufv/kudzu-dataset",
            },
            "licenses": [{"id": 1, "name": "MIT License (Copyright (c) 2021 Michael Canesche)",
                          "url": "https://github.com/lesc-ufv/kudzu-dataset/blob/main/LICENSE"}],
            "images": images,
            "annotations": annotations,
            "categories": [CATEGORY],
        }
        with open(os.path.join(out, target + ".json"), "w", encoding="utf-8") as f:
            json.dump(coco, f)
        print(f"{target}: {len(images)} images, {len(annotations)} instances -> "
              f"{os.path.join(out, target + '.json')}")
    if stats["clipped"] or stats["dropped"]:
        print(f"polygons clipped to the image: {stats['clipped']}, "
              f"dropped (< 3 points or area < 1 px): {stats['dropped']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", required=True,
                        help="kudzu-dataset repository root (holds train/ and val/)")
    parser.add_argument("--out", required=True, help="output folder for the COCO copy")
    parser.add_argument("--val-every", type=int, default=5,
                        help="every N-th image (sorted by number) goes to val (default 5)")
    parser.add_argument("--keep-source-split", action="store_true",
                        help="use the repository's train/ and val/ folders as the split")
    parser.add_argument("--link", action="store_true",
                        help="hard-link images instead of copying them")
    args = parser.parse_args()
    if args.val_every < 2 and not args.keep_source_split:
        parser.error("--val-every must be at least 2")
    convert(os.path.abspath(args.src), os.path.abspath(args.out), args.val_every,
            args.keep_source_split, args.link)


if __name__ == "__main__":
    main()
