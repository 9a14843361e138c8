"""Reference per-head attention statistics for the `heads` command, from transformers' own attention probabilities.

For every case under tests/fixtures/cases/<model>/<case>.safetensors (written by make_fixtures.py: the encoder
attentions are what `ViTMAEForPreTraining(..., output_attentions=True)` returned, the decoder ones were captured
with forward hooks), writes tests/fixtures/heads/<model>/<case>.csv with the statistics issue 9 defines, computed here with
numpy in float64, independently of the Rust code:

    mean_distance_px = mean over query tokens i >= 1 of sum_{j>=1} A[i,j] dist(i,j) / sum_{j>=1} A[i,j]
    entropy          = mean over all query tokens i of -sum_j A[i,j] ln A[i,j]      (0 ln 0 = 0)
    cls_share        = mean over query tokens i >= 1 of A[i,0]

Token 0 is CLS; encoder token i >= 1 is patch ids_keep[i-1] (ids_keep = the first len_keep entries of
ids_shuffle = argsort(ids_restore), HF's shuffled order), decoder token i >= 1 is patch i-1; dist is the patch size
times the Euclidean distance between the two patches' (row, column) grid positions, in pixels.

    tools/.venv/bin/python tools/head_stats_reference.py [--fixtures tests/fixtures]

Needs only numpy and safetensors (pinned in requirements.txt). Deterministic: rerunning rewrites identical files.
"""

import argparse
import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

HEADER = "stack,layer,head,mean_distance_px,entropy,cls_share"


def token_distances(patches, cols, patch_size):
    rows_cols = np.array([(p // cols, p % cols) for p in patches], dtype=np.float64).reshape(-1, 2)
    delta = rows_cols[:, None, :] - rows_cols[None, :, :]
    return patch_size * np.sqrt((delta**2).sum(axis=-1))


def mean_or_nan(values):
    return values.mean() if values.size else float("nan")


def head_rows(stack, attentions, patches, cols, patch_size):
    distances = token_distances(patches, cols, patch_size)
    rows = []
    for layer, attention in enumerate(attentions):
        probabilities = attention[0].astype(np.float64)  # [heads, n, n]
        heads, n, _ = probabilities.shape
        assert n == len(patches) + 1, (stack, layer, n, len(patches))
        for head in range(heads):
            a = probabilities[head]
            # With nothing visible (ratio 1) the encoder has only CLS: the means over patch queries are NaN.
            with np.errstate(divide="ignore", invalid="ignore"):
                plogp = np.where(a > 0, a * np.log(a), 0.0)
                entropy = -plogp.sum(axis=1).mean()
                keys = a[1:, 1:]
                mean_distance = mean_or_nan((keys * distances).sum(axis=1) / keys.sum(axis=1))
                cls_share = mean_or_nan(a[1:, 0])
            values = (float(mean_distance), float(entropy), float(cls_share))
            rows.append(f"{stack},{layer},{head}," + ",".join(repr(v) for v in values))
    return rows


def case_rows(case_path, config):
    tensors = load_file(str(case_path))
    _, _, height, width = tensors["pixel_values"].shape
    patch_size = config["patch_size"]
    cols = width // patch_size
    num_patches = (height // patch_size) * cols
    encoder = [tensors[f"encoder_attentions.{i}"] for i in range(config["num_hidden_layers"])]
    decoder = [tensors[f"decoder_attentions.{j}"] for j in range(config["decoder_num_hidden_layers"])]
    ids_shuffle = np.argsort(tensors["ids_restore"][0], kind="stable")
    len_keep = encoder[0].shape[-1] - 1
    ids_keep = [int(p) for p in ids_shuffle[:len_keep]]
    return head_rows("encoder", encoder, ids_keep, cols, patch_size) + head_rows(
        "decoder", decoder, list(range(num_patches)), cols, patch_size
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=Path(__file__).resolve().parent.parent / "tests" / "fixtures")
    args = parser.parse_args()
    written = 0
    for model_dir in sorted((args.fixtures / "cases").iterdir()):
        config = json.loads((args.fixtures / "models" / model_dir.name / "config.json").read_text())
        out_dir = args.fixtures / "heads" / model_dir.name
        out_dir.mkdir(parents=True, exist_ok=True)
        for case in sorted(model_dir.glob("*.safetensors")):
            rows = case_rows(case, config)
            (out_dir / f"{case.stem}.csv").write_text("\n".join([HEADER, *rows]) + "\n")
            written += 1
    print(f"wrote {written} reference CSVs")


if __name__ == "__main__":
    main()
