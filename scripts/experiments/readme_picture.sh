#!/usr/bin/env bash
# docs/images/predictions.png, the README's picture: three of the demo's ground truth |
# prediction pictures (runs/demo/pictures, written by scripts/demo.sh), stacked at half size.
# Made with CENTERMASK_DEMO_MINUTES=10 bash scripts/demo.sh on a 2-core AMD EPYC without AVX-512
# (fp32; mask AP 0.417, box AP 0.465 on the demo's validation split). Needs python3-matplotlib
# (a dev tool, not the product's).
#   scripts/experiments/readme_picture.sh [PICTURES=runs/demo/pictures]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
pictures="${1:-$root/runs/demo/pictures}"
/usr/bin/python3 - "$pictures" "$root/docs/images/predictions.png" <<'PY'
import sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.image as image
import numpy as np
folder, out = sys.argv[1], sys.argv[2]
pairs = [image.imread(f"{folder}/{name}.png")[::2, ::2, :3] for name in ("000001", "000008", "000010")]
gap = np.ones((6, pairs[0].shape[1], 3))
image.imsave(out, np.concatenate([pairs[0], gap, pairs[1], gap, pairs[2]], 0))
PY
echo "$root/docs/images/predictions.png"
