#!/usr/bin/env python3
"""The people of the COCO subset in ../shared/data/coco_mini as a one-class real-photo set.

coco_mini holds 80 train and 79 val images of COCO 2017 (CC BY 4.0 annotations; the photos keep
their Flickr licences, listed in each image record). Most of its 80 classes have a handful of
objects, too few to learn from; its people are the one class with enough: 167 in train, 117 in
val. This script keeps every image (images without people are the negatives a user's set has
too) and only the `person` annotations, renumbered as category 1, crowd regions kept as crowd
(COCO evaluation ignores detections on them):

    OUT/train.json  OUT/val.json      (images stay in coco_mini/images)

    python3 scripts/data/prepare_coco_mini_people.py --src ../shared/data/coco_mini --out /tmp/people
    centermask check-data --gt /tmp/people/train.json --images ../shared/data/coco_mini/images

Standard library only.
"""

import argparse
import json
import os
import sys

PERSON = "person"


def fail(message):
    sys.exit("prepare_coco_mini_people: error: " + message)


def people_only(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{path}: {e}")
    for field in ("images", "annotations", "categories"):
        if field not in data:
            fail(f"{path}: no '{field}' field")
    ids = [c["id"] for c in data["categories"] if c.get("name") == PERSON]
    if not ids:
        fail(f"{path}: no category named '{PERSON}' in 'categories'")
    person_id = ids[0]
    annotations = []
    for a in data["annotations"]:
        if a.get("category_id") == person_id:
            a = dict(a, category_id=1)
            annotations.append(a)
    return {
        "info": {"description": f"people of {os.path.basename(path)} (coco_mini)"},
        "licenses": data.get("licenses", []),
        "images": data["images"],
        "annotations": annotations,
        "categories": [{"id": 1, "name": PERSON, "supercategory": PERSON}],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", required=True, help="coco_mini folder (train.json, val.json)")
    parser.add_argument("--out", required=True, help="folder for train.json and val.json")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for split in ("train", "val"):
        result = people_only(os.path.join(args.src, split + ".json"))
        target = os.path.join(args.out, split + ".json")
        # Written beside and renamed, so that an interrupted run leaves no half file.
        with open(target + ".tmp", "w", encoding="utf-8") as f:
            json.dump(result, f)
        os.replace(target + ".tmp", target)
        crowd = sum(1 for a in result["annotations"] if a.get("iscrowd"))
        print(f"{target}: {len(result['images'])} images, "
              f"{len(result['annotations']) - crowd} people, {crowd} crowd regions")


if __name__ == "__main__":
    main()
