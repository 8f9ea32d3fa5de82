"""The vision-language model behind `/question`: any transformers image-text-to-text model and its processor.

`VLMBackend.load` is slow (importing transformers alone takes seconds; a 500M model takes more) and is meant
for a worker thread; it reports each step through a callback and turns every way a model can be missing into
one message that says what to download and where. `answer` puts every camera's frame into one chat prompt,
named, and decodes greedily with a bounded number of new tokens, so the same question on the same frames gives
the same answer.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.dataset.reader import hub_offline

log = logging.getLogger(__name__)

DEFAULT_MODEL = "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"
DEFAULT_MAX_NEW_TOKENS = 128
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "float16", "bfloat16")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

Progress = Callable[[str], None]


class ModelLoadError(RuntimeError):
    """The model cannot be loaded; the message says what to download, where to put it or what to change."""


@dataclass(frozen=True)
class VLMSettings:
    model: str = DEFAULT_MODEL  # a Hub id or a local folder in transformers format (config + weights + processor)
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    dtype: str = "auto"  # auto | float32 | float16 | bfloat16
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS

    def __post_init__(self) -> None:
        if not self.model.strip():
            raise ValueError("no model given: pass a Hub id (e.g. " + DEFAULT_MODEL + ") or a model folder")
        if self.device.split(":")[0] not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}: use one of {', '.join(DEVICES)} (or cuda:N)")
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}: use one of {', '.join(DTYPES)}")
        if not 1 <= self.max_new_tokens <= 4096:
            raise ValueError(f"max_new_tokens must be 1-4096, got {self.max_new_tokens}")


def hub_cache_dir() -> Path:
    """huggingface_hub's model cache, read from the environment now (HF_HUB_CACHE, else $HF_HOME/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    hf_home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface"
    )
    return Path(hf_home).expanduser() / "hub"


def download_hint(model: str) -> str:
    cache = hub_cache_dir()
    folder = "models--" + model.replace("/", "--")
    return (
        f"on a machine with internet run `hf download {model}`, then copy its "
        f"~/.cache/huggingface/hub/{folder} folder to {cache / folder} here; or run "
        f"`hf download {model} --local-dir DIR` and pass --model DIR"
    )


def resolve_model(model: str, progress: Progress) -> Path:
    """The local folder holding `model`: the folder itself, the cached Hub snapshot, or a fresh download."""
    local = Path(model).expanduser()
    if local.exists():
        if not (local / "config.json").is_file():
            raise ModelLoadError(
                f"{local} is not a transformers model folder (no config.json): pass a folder with config.json, "
                "the weights and the processor files, or a Hub id such as " + DEFAULT_MODEL
            )
        return local
    if not _REPO_ID.match(model) or model.startswith((".", "/", "~")):
        raise ModelLoadError(f"no model folder at {local}, and {model!r} is not a Hub id (owner/name)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    cache = hub_cache_dir()
    try:
        return Path(snapshot_download(model, cache_dir=cache, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    if hub_offline():
        raise ModelLoadError(
            f"model {model} is not in the Hugging Face cache ({cache}) and HF_HUB_OFFLINE is set, so it cannot "
            f"be downloaded: {download_hint(model)}"
        )
    progress(f"downloading {model} from the Hugging Face Hub into {cache}…")
    try:
        return Path(snapshot_download(model, cache_dir=cache))
    except GatedRepoError as exc:
        raise ModelLoadError(
            f"model {model} is gated: accept its terms on huggingface.co, then `hf auth login`"
        ) from exc
    except RepositoryNotFoundError as exc:
        raise ModelLoadError(
            f"model {model} was not found on the Hugging Face Hub: check the id (or `hf auth login` if private)"
        ) from exc
    except (HfHubHTTPError, OSError) as exc:
        raise ModelLoadError(
            f"could not download {model} ({type(exc).__name__}: {exc}); {download_hint(model)}"
        ) from exc


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"--device {device}: torch sees no CUDA device here; use --device cpu (or auto)")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelLoadError("--device mps: Apple's Metal backend is not available here; use --device cpu")
    return device


def resolve_dtype(dtype: str, device: str) -> Any:
    """float32 on CPU; bfloat16 on a GPU that has it, else float16."""
    import torch

    if dtype != "auto":
        return getattr(torch, dtype)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float16 if device == "mps" else torch.float32


def build_messages(cameras: list[str], question: str) -> list[dict[str, Any]]:
    """One user turn: each camera's name, then its image, in order; then the question."""
    content: list[dict[str, Any]] = []
    for i, name in enumerate(cameras):
        separator = "\n" if i else ""
        content.append({"type": "text", "text": f"{separator}Camera '{name}':"})
        content.append({"type": "image"})
    content.append({"type": "text", "text": ("\n" if cameras else "") + question})
    return [{"role": "user", "content": content}]


def image_only_processor(folder: Path, cause: ImportError) -> Any:
    """SmolVLM's processor also builds a video processor, which needs torchvision (and num2words); without
    them, SmolVLM models get Idefics3's processor instead: the same image preprocessing and image prompt
    (SmolVLM's is derived from it), minus video, which questions about camera frames never use."""
    from transformers import Idefics3Processor

    try:
        model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    except (OSError, ValueError):
        model_type = None
    if model_type not in ("smolvlm", "idefics3"):
        raise ModelLoadError(f"the processor of {folder} needs a package that is not installed: {cause}") from cause
    reason = str(cause).strip().split(". ")[0].split("\n")[0]
    log.info("%s: %s; using the image-only Idefics3 processor", folder.name, reason)
    return Idefics3Processor.from_pretrained(folder)


class VLMBackend:
    """One loaded model + processor. `load` and `answer` block; call them from one worker at a time."""

    def __init__(self, settings: VLMSettings) -> None:
        self.settings = settings
        self.device: str | None = None
        self.dtype: str | None = None
        self._model: Any = None
        self._processor: Any = None
        self._torch_dtype: Any = None

    def load(self, progress: Progress) -> None:
        model = self.settings.model
        progress("importing torch and transformers…")  # seconds on a laptop: worth saying
        from transformers import AutoModelForImageTextToText, AutoProcessor
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # tqdm on stderr would scribble over the TUI; progress goes here
        device = resolve_device(self.settings.device)
        torch_dtype = resolve_dtype(self.settings.dtype, device)
        progress(f"locating {model}…")
        folder = resolve_model(model, progress)
        progress(f"loading the processor of {model}…")
        try:
            try:
                processor = AutoProcessor.from_pretrained(folder)
            except ImportError as exc:
                processor = image_only_processor(folder, exc)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(
                f"cannot load the processor from {folder} ({exc}); the folder needs the processor files "
                "(processor_config.json / preprocessor_config.json, tokenizer files) next to the weights"
            ) from exc
        dtype_name = str(torch_dtype).removeprefix("torch.")
        progress(f"loading the weights of {model} ({dtype_name}) onto {device}…")
        try:
            vlm = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch_dtype)
        except ValueError as exc:
            raise ModelLoadError(
                f"{model} is not an image-text-to-text model transformers can load ({exc}); use a "
                f"vision-language model such as {DEFAULT_MODEL}"
            ) from exc
        except OSError as exc:
            raise ModelLoadError(
                f"the weights of {model} in {folder} cannot be read ({exc}); the download may be incomplete: "
                f"{download_hint(model) if _REPO_ID.match(model) else 'copy the model folder again'}"
            ) from exc
        try:
            vlm = vlm.to(device).eval()
        except RuntimeError as exc:
            raise ModelLoadError(f"cannot move {model} to {device} ({exc}); try --device cpu") from exc
        self._processor, self._model, self._torch_dtype = processor, vlm, torch_dtype
        self.device, self.dtype = device, dtype_name

    def prompt(self, cameras: list[str], question: str) -> str:
        """The prompt text: the processor's chat template over `build_messages`, or the bare question for a
        processor without one (e.g. PaliGemma, whose processor puts the image tokens in front itself)."""
        self._require_loaded()
        if getattr(self._processor, "chat_template", None):
            return str(self._processor.apply_chat_template(build_messages(cameras, question),
                                                           add_generation_prompt=True))
        return question

    def inputs(self, question: str, frames: Mapping[str, np.ndarray]) -> Any:
        """The model inputs (token ids, pixel values...) for a question about `frames`, on the model's device."""
        from PIL import Image

        self._require_loaded()
        cameras = list(frames)
        images = [Image.fromarray(np.ascontiguousarray(frames[c][..., :3], dtype=np.uint8)) for c in cameras]
        batch = self._processor(text=self.prompt(cameras, question), images=images or None, return_tensors="pt")
        return batch.to(device=self.device, dtype=self._torch_dtype)

    def answer(self, question: str, frames: Mapping[str, np.ndarray]) -> str:
        """The model's answer about these frames (camera name -> HxWx3 uint8 RGB), special tokens removed."""
        import torch

        inputs = self.inputs(question, frames)
        with torch.inference_mode():
            out = self._model.generate(**inputs, max_new_tokens=self.settings.max_new_tokens, do_sample=False)
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        return str(self._processor.batch_decode(new_tokens, skip_special_tokens=True)[0]).strip()

    def _require_loaded(self) -> None:
        if self._model is None:
            raise RuntimeError("the model is not loaded")
