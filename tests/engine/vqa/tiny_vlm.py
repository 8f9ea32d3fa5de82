"""A tiny random SmolVLM saved as its Hub repo lays it out, built offline in a second.

The folder has what `HuggingFaceTB/SmolVLM2-*` has: config.json (model_type smolvlm), model.safetensors,
generation_config.json, tokenizer files, preprocessor_config.json (SmolVLMImageProcessor),
processor_config.json (SmolVLMProcessor, image_seq_len) and chat_template.json (SmolVLM's own template).
The tokenizer is a WordLevel vocabulary with the special tokens the processor needs.

`forced` makes the answer predictable without touching the code under test: the generation config suppresses
every token but that one, so greedy decoding emits it at every step (the EOS token gives an empty answer).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    GenerationConfig,
    PreTrainedTokenizerFast,
    SmolVLMConfig,
    SmolVLMForConditionalGeneration,
)
from transformers.models.smolvlm.image_processing_pil_smolvlm import SmolVLMImageProcessorPil
from transformers.models.smolvlm.processing_smolvlm import DEFAULT_CHAT_TEMPLATE

IMAGE_SIZE = 64
IMAGE_SEQ_LEN = 4  # (image_size / patch_size)^2 / scale_factor^2
EOS = "<end_of_utterance>"
SPECIAL = ["<pad>", "<unk>", "<|im_start|>", EOS, "<image>", "<fake_token_around_image>", "<global-img>"] + [
    f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)
]
WORDS = ["User:", "Assistant:", "Camera", "'front':", "'wrist':", "where", "is", "the", "red", "cube", "<loc0512>"]


def build_tiny_smolvlm(folder: Path, *, forced: str | None = None, seed: int = 0) -> Path:
    vocab = {token: i for i, token in enumerate(SPECIAL + WORDS)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<unk>", pad_token="<pad>", bos_token="<|im_start|>", eos_token=EOS,
        additional_special_tokens=SPECIAL[3:],
    )
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    SmolVLMImageProcessorPil(
        do_image_splitting=False,
        size={"longest_edge": IMAGE_SIZE},
        max_image_size={"longest_edge": IMAGE_SIZE},
    ).save_pretrained(folder)
    (folder / "processor_config.json").write_text(
        json.dumps({"image_seq_len": IMAGE_SEQ_LEN, "processor_class": "SmolVLMProcessor"})
    )
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": DEFAULT_CHAT_TEMPLATE}))

    eos, pad = vocab[EOS], vocab["<pad>"]
    config = SmolVLMConfig(
        text_config=dict(
            model_type="llama", vocab_size=len(vocab), hidden_size=64, intermediate_size=128,
            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
            pad_token_id=pad, bos_token_id=vocab["<|im_start|>"], eos_token_id=eos,
        ),
        vision_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            image_size=IMAGE_SIZE, patch_size=16,
        ),
        scale_factor=2,
        image_token_id=vocab["<image>"],
    )
    torch.manual_seed(seed)
    model = SmolVLMForConditionalGeneration(config)
    generation = GenerationConfig(eos_token_id=eos, pad_token_id=pad)
    if forced is not None:
        generation.suppress_tokens = [i for i in range(len(vocab)) if i != vocab[forced]]
    model.generation_config = generation
    model.save_pretrained(folder)
    return folder
