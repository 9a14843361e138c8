"""Reference attention rollout with discard ratio, as jacobgil/vit-explain's `rollout` computes it, in numpy.

vit-explain (`vit_rollout.py`, function `rollout(attentions, discard_ratio, head_fusion)`), for each layer, first
layer first:

    fused = attention.mean / max / min over heads                        # [1, n, n]
    flat = fused.view(1, -1)
    _, indices = flat.topk(int(flat.size(-1) * discard_ratio), -1, largest=False)
    indices = indices[indices != 0]                                      # never the CLS->CLS weight
    flat[0, indices] = 0                                                 # (flat is a view of fused)
    a = (fused + I) / 2
    a = a / a.sum(dim=-1)                                                # <- issue #16: no keepdim
    result = a @ result                                                  # result starts as I

One deliberate difference: vit-explain divides by the row sums without `keepdim`, which broadcasts the sum of row
j along column j (its issue #16); here, as in MAE Explorer, each row is divided by its own sum (`keepdims=True`).
Everything else is vit-explain's: the smallest `int(n*n*discard_ratio)` weights of the flattened fused matrix are
chosen, flat index 0 (CLS->CLS) is spared (so one fewer is zeroed when it is among them), rows and columns of CLS
are otherwise treated like any other.

Input: transformers' own attention probabilities in the committed fixture cases
(`tests/fixtures/cases/<model>/<case>.safetensors`, `encoder_attentions.i` / `decoder_attentions.j`).
Output: `tests/fixtures/rollout/rollout.safetensors`, float64 `[n, n]` tensors named
`<model>.<case>.<stack>.<fusion>.<discard>` (the rollout over every layer of the stack; discard as written in
DISCARDS), metadata `discards` and `cases`. Each discard boundary is checked to be unambiguous: the largest
discarded and the smallest kept fused weight differ by more than 1e-6 relative, so an f32 implementation must
pick the same weights.

    tools/.venv/bin/python tools/rollout_reference.py [--fixtures tests/fixtures]

Needs only numpy and safetensors (pinned in requirements.txt). Deterministic.
"""

import argparse
import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

CASES = [("tiny-p8", "seed2_r0.5"), ("tiny-p4-normpix", "seed0")]
FUSIONS = ["mean", "max", "min"]
DISCARDS = ["0.0", "0.5", "0.9"]


def fuse(attention, fusion):
    heads = attention[0].astype(np.float64)  # [heads, n, n]
    return {"mean": heads.mean(axis=0), "max": heads.max(axis=0), "min": heads.min(axis=0)}[fusion]


def rollout(layers, fusion, discard_ratio):
    n = layers[0].shape[-1]
    result = np.eye(n)
    for attention in layers:
        fused = fuse(attention, fusion)
        flat = fused.reshape(-1)  # a view, as in torch
        count = int(flat.size * discard_ratio)
        if count > 0:
            order = np.argsort(flat, kind="stable")
            smallest, kept = order[:count], order[count:]
            low, high = flat[smallest].max(), flat[kept].min()
            assert high - low > 1e-6 * max(abs(high), 1e-12), ("ambiguous discard boundary", low, high)
            flat[smallest[smallest != 0]] = 0.0
        a = (fused + np.eye(n)) / 2.0
        a = a / a.sum(axis=-1, keepdims=True)
        result = a @ result
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=Path(__file__).resolve().parent.parent / "tests" / "fixtures")
    args = parser.parse_args()
    out = {}
    for model, case in CASES:
        config = json.loads((args.fixtures / "models" / model / "config.json").read_text())
        tensors = load_file(str(args.fixtures / "cases" / model / f"{case}.safetensors"))
        stacks = {
            "encoder": [tensors[f"encoder_attentions.{i}"] for i in range(config["num_hidden_layers"])],
            "decoder": [tensors[f"decoder_attentions.{j}"] for j in range(config["decoder_num_hidden_layers"])],
        }
        for stack, layers in stacks.items():
            for fusion in FUSIONS:
                for discard in DISCARDS:
                    out[f"{model}.{case}.{stack}.{fusion}.{discard}"] = np.ascontiguousarray(
                        rollout(layers, fusion, float(discard))
                    )
    target = args.fixtures / "rollout"
    target.mkdir(parents=True, exist_ok=True)
    metadata = {"discards": ",".join(DISCARDS), "cases": ",".join(f"{m}/{c}" for m, c in CASES)}
    save_file(out, str(target / "rollout.safetensors"), metadata=metadata)
    print(f"wrote {len(out)} rollouts to {target / 'rollout.safetensors'}")


if __name__ == "__main__":
    main()
