"""Declare the input preprocessing of a shipped model in its metadata (safetensors and ONNX), weights untouched.

The first `seed` and `fer-m` weights were trained on a FER2013 copy whose faces had been histogram-equalised
(cv2.equalizeHist); they were run on unequalised faces until their metadata said so. This wrote it:

    python tools/declare_preprocessing.py seed equalize_hist
    python tools/declare_preprocessing.py fer-m equalize_hist
"""

from __future__ import annotations

import argparse
import json

from ferkit.runtime import preprocess
from ferkit.analysis.export import update_metadata


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", help="shipped model name")
    ap.add_argument("preprocessing", help="none, equalize_hist, clahe or clahe:CLIP:TILES")
    ap.add_argument("--note", default="trained on a histogram-equalised copy of FER2013 (faces passed through "
                    "cv2.equalizeHist); declared after training by tools/declare_preprocessing.py")
    args = ap.parse_args()
    entry = update_metadata(args.name, {"preprocessing": preprocess.parse(args.preprocessing),
                                        "preprocessing_note": args.note})
    print(json.dumps(entry, indent=2))


if __name__ == "__main__":
    main()
