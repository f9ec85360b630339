#!/usr/bin/env python3
"""Bakes the LoRAs of test/fixtures/lora-bake's cases with torch, independently of gyoza, and writes
the baked weights (fp16) that the test compares gyoza's output with.

    python3 scripts/bake-lora-torch.py INPUT_DIR test/fixtures/lora-bake/expected.safetensors

INPUT_DIR holds what `npx tsx scripts/write-lora-bake-inputs.ts INPUT_DIR` writes. Not run by the
tests (they need no Python); written for Debian's python3-torch (1.13), which has no safetensors
package, so safetensors files are read and written here by hand.

What it computes, per changed weight W (kohya networks/merge_lora.py, supermerger's "Merge to
Checkpoint", LoRA Block Weight's block table):
    W = W.float()
    for each LoRA in order, for each of its modules that changes W:
        delta = up @ down          (fp32; 1x1 convolutions squeezed, 3x3 through conv2d as kohya does)
        m = ratio * block_weight * (alpha / rank)      (a Python float: torch rounds it to fp32 once)
        W[rows] = W[rows] + m * delta
    W.half()
The module → key table below is written by hand (diffusers/sgm names → ldm/sgm keys), and the block
weights follow LBW's lists and its substring rule, so neither comes from gyoza.
"""
import json
import struct
import sys
from pathlib import Path

import torch

DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "I64": torch.int64}
NAMES = {value: key for key, value in DTYPES.items()}

# kohya module → (checkpoint key, rows part or None); OpenCLIP packs q, k, v into in_proj_weight
U = "model.diffusion_model."
TE = "cond_stage_model.transformer.text_model.encoder.layers."
TE1 = "conditioner.embedders.0.transformer.text_model.encoder.layers."
TE2 = "conditioner.embedders.1.model.transformer.resblocks."
MODULES = {
    "lora_unet_down_blocks_0_attentions_0_proj_in": (U + "input_blocks.1.1.proj_in.weight", None),
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q": (
        U + "input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight", None),
    "lora_unet_down_blocks_1_attentions_1_transformer_blocks_0_attn2_to_k": (
        U + "input_blocks.5.1.transformer_blocks.0.attn2.to_k.weight", None),
    "lora_unet_mid_block_attentions_0_transformer_blocks_0_ff_net_0_proj": (
        U + "middle_block.1.transformer_blocks.0.ff.net.0.proj.weight", None),
    "lora_unet_up_blocks_1_attentions_2_transformer_blocks_0_ff_net_2": (
        U + "output_blocks.5.1.transformer_blocks.0.ff.net.2.weight", None),
    "lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_attn2_to_out_0": (
        U + "output_blocks.11.1.transformer_blocks.0.attn2.to_out.0.weight", None),
    "lora_te_text_model_encoder_layers_0_self_attn_q_proj": (TE + "0.self_attn.q_proj.weight", None),
    "lora_te_text_model_encoder_layers_11_mlp_fc2": (TE + "11.mlp.fc2.weight", None),
    "lora_unet_down_blocks_0_resnets_0_conv1": (U + "input_blocks.1.0.in_layers.2.weight", None),
    "lora_unet_up_blocks_0_resnets_0_conv1": (U + "output_blocks.0.0.in_layers.2.weight", None),
    "lora_unet_time_embedding_linear_1": (U + "time_embed.0.weight", None),
    "lora_unet_down_blocks_2_attentions_1_transformer_blocks_0_attn1_to_v": (
        U + "input_blocks.8.1.transformer_blocks.0.attn1.to_v.weight", None),
    "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k": (
        U + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight", None),
    "lora_unet_middle_block_1_proj_in": (U + "middle_block.1.proj_in.weight", None),
    "lora_unet_output_blocks_2_1_transformer_blocks_1_ff_net_2": (
        U + "output_blocks.2.1.transformer_blocks.1.ff.net.2.weight", None),
    "lora_te1_text_model_encoder_layers_0_self_attn_q_proj": (TE1 + "0.self_attn.q_proj.weight", None),
    "lora_te2_text_model_encoder_layers_0_self_attn_k_proj": (TE2 + "0.attn.in_proj_weight", 1),
    "lora_te2_text_model_encoder_layers_0_self_attn_v_proj": (TE2 + "0.attn.in_proj_weight", 2),
    "lora_te2_text_model_encoder_layers_30_mlp_fc1": (TE2 + "30.mlp.c_fc.weight", None),
}

# LoRA Block Weight (hako-mikan/sd-webui-lora-block-weight): BLOCKID lists, to26, and BLOCKS matched
# as substrings of the key with "_" for "."; a key no block names keeps 1.
BLOCKID26 = ["BASE"] + [f"IN{i:02}" for i in range(12)] + ["M00"] + [f"OUT{i:02}" for i in range(12)]
BLOCKID17 = ["BASE", "IN01", "IN02", "IN04", "IN05", "IN07", "IN08", "M00"] + [f"OUT{i:02}" for i in range(3, 12)]
BLOCKID12 = ["BASE", "IN04", "IN05", "IN07", "IN08", "M00"] + [f"OUT{i:02}" for i in range(6)]
BLOCKID20 = ["BASE"] + [f"IN{i:02}" for i in range(9)] + ["M00"] + [f"OUT{i:02}" for i in range(9)]
BLOCKIDS = {12: BLOCKID12, 17: BLOCKID17, 20: BLOCKID20, 26: BLOCKID26}
BLOCKS = (["encoder"] + [f"diffusion_model_input_blocks_{i}_" for i in range(12)] + ["diffusion_model_middle_block_"]
          + [f"diffusion_model_output_blocks_{i}_" for i in range(12)] + ["embedders", "transformer_resblocks"])


def to26(ratios):
    out = [0.0] * 26
    for value, block in zip(ratios, BLOCKIDS[len(ratios)]):
        out[BLOCKID26.index(block)] = value
    return out


def block_weight(key, weights):
    if weights is None:
        return 1.0
    lwei = to26([float(v) for v in weights.split(",")])
    ratio = 1.0
    for i, block in enumerate(BLOCKS):
        if block in key.replace(".", "_"):
            ratio = lwei[0 if i >= 26 else i]
    return ratio


def read_safetensors(path):
    data = Path(path).read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    header.pop("__metadata__", None)
    body = data[8 + length :]
    tensors = {}
    for key, info in header.items():
        begin, end = info["data_offsets"]
        raw = bytearray(body[begin:end])
        tensor = torch.frombuffer(raw, dtype=DTYPES[info["dtype"]]) if raw else torch.empty(0, dtype=DTYPES[info["dtype"]])
        tensors[key] = tensor.reshape(info["shape"]).clone()
    return tensors


def write_safetensors(path, tensors, metadata):
    header, offset, parts = {"__metadata__": metadata}, 0, []
    for key in sorted(tensors):
        raw = tensors[key].contiguous().view(torch.uint8).numpy().tobytes() if tensors[key].numel() else b""
        header[key] = {"dtype": NAMES[tensors[key].dtype], "shape": list(tensors[key].shape), "data_offsets": [offset, offset + len(raw)]}
        parts.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(parts))


def delta_of(up, down):
    """up @ down as kohya's merge_lora.py computes it for linear, 1x1 and 3x3 layers."""
    if down.dim() == 2:
        return up @ down
    if down.shape[2:4] == (1, 1):
        return (up.squeeze(3).squeeze(2) @ down.squeeze(3).squeeze(2)).unsqueeze(2).unsqueeze(3)
    return torch.nn.functional.conv2d(down.permute(1, 0, 2, 3), up).permute(1, 0, 2, 3)


def bake(folder, case):
    model = read_safetensors(folder / case["model"]["file"])
    baked = {}
    for lora in case["loras"]:
        tensors = read_safetensors(folder / lora["file"])
        modules = sorted({key.split(".")[0] for key in tensors})
        for module in modules:
            key, part = MODULES[module]
            weight = block_weight(key, lora.get("weights"))
            if lora["ratio"] * weight == 0:
                continue  # nothing to add: the key is left as it is
            up = tensors[module + ".lora_up.weight"].float()
            down = tensors[module + ".lora_down.weight"].float()
            rank = down.shape[0]
            alpha = tensors[module + ".alpha"].item() if module + ".alpha" in tensors else rank
            m = lora["ratio"] * weight * (alpha / rank)
            w = baked.get(key, model[key].float())
            rows = w.shape[0] // 3 if part is not None else w.shape[0]
            first = part * rows if part is not None else 0
            target = w[first : first + rows]
            w[first : first + rows] = target + m * delta_of(up, down).reshape(target.shape)
            baked[key] = w
    return {f"{case['name']}/{key}": value.half() for key, value in baked.items()}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    folder, output = Path(sys.argv[1]), sys.argv[2]
    cases = json.loads((folder / "cases.json").read_text())
    expected = {}
    for case in cases:
        expected.update(bake(folder, case))
    write_safetensors(output, expected, {"torch": torch.__version__, "generated_by": "scripts/bake-lora-torch.py"})
    print(f"wrote {len(expected)} baked weights to {output} (torch {torch.__version__})")


if __name__ == "__main__":
    main()
