"""The PyTorch side of `mae-explorer dump` end to end, for timing the two as whole processes side by side:
import torch and transformers, load a model folder, preprocess one image with its image processor, run one forward
pass with attentions (mask seed 0) and write every output to a safetensors file. Pinned versions:
tools/requirements.txt.

    tools/.venv/bin/python tools/dump_torch.py MODEL_DIR IMAGE OUT.safetensors [--threads 2]
"""

import argparse

import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import AutoImageProcessor, ViTMAEForPreTraining


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("image")
    ap.add_argument("out")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    processor = AutoImageProcessor.from_pretrained(args.model)
    model = ViTMAEForPreTraining.from_pretrained(args.model, attn_implementation="eager").eval()
    inputs = processor(images=Image.open(args.image).convert("RGB"), return_tensors="pt")
    torch.manual_seed(0)
    with torch.no_grad():
        out = model(**inputs, output_attentions=True, output_hidden_states=False)
    tensors = {"pixel_values": inputs["pixel_values"], "logits": out.logits, "mask": out.mask,
               "ids_restore": out.ids_restore, "loss": out.loss.reshape(1)}
    tensors.update({f"attention_{i}": a for i, a in enumerate(out.attentions)})
    save_file({k: v.contiguous() for k, v in tensors.items()}, args.out)


if __name__ == "__main__":
    main()
