"""Evaluate the screen stage's text checks on labelled rows the models never saw.

    PYTHONPATH=services python -m loadtest.eval_policy [--csv PATH] [--data DIR] [--bench]

Data sets (see ``/work/shared/data/README.md``; the directory is ``--data``, else
``$REPLYFLOW_POLICY_DATA``, else ``data/`` in the repository, else ``/work/shared/data``):

- ``tubespam_val.csv`` (YouTube comments, ``label`` 1 = spam): checks ``spam`` (the model),
  ``scam`` (rule detector alone) and ``spam_or_scam`` (either fires).
- the held-out 30 % of ``davidson_dev.csv`` (tweets; ``class`` 0 hate, 1 offensive, 2 neither;
  abusive = 0 or 1): check ``abuse``; ``f1`` is the abusive class, ``macro_f1`` the mean of
  abusive and clean F1. The split is :func:`davidson_split` (stratified by class, decided by a
  hash of the row id, so it needs no random state and no file); the training script uses the
  same function and records a digest of its training ids in the model, which is checked here.
- ``loadtest/data/injection_evasion.jsonl`` (written for this project): checks
  ``prompt_injection`` and ``abuse`` on prompt injections in five languages, benign look-alikes,
  obfuscated insults and clean comments.

``--csv PATH`` scores any CSV instead: a ``label`` column means the spam format (text in
``text``/``CONTENT``), a ``class`` column the Davidson format (text in ``tweet``/``text``).
``--bench`` also measures throughput of the whole screen (``TextScreener.screen``) on one
core in micro-batches. Prints a table and writes ``loadtest/reports/eval-policy.json``: one
object per (check, dataset) with ``check``, ``dataset``, ``precision``, ``recall``, ``f1``,
``macro_f1``, ``n`` (plus ``tp``/``fp``/``fn``/``tn``).
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INJECTION_SET = Path(__file__).parent / "data" / "injection_evasion.jsonl"
REPORT = Path(__file__).parent / "reports" / "eval-policy.json"
HELDOUT_FRACTION = 0.3
SPLIT_SALT = "replyflow-davidson-heldout-v1"


# ----------------------------------------------------------------------------------------------
# data


def data_dir(explicit: str | Path | None = None) -> Path:
    candidates = [explicit, os.environ.get("REPLYFLOW_POLICY_DATA"), ROOT / "data", "/work/shared/data"]
    for c in candidates:
        if c and (Path(c) / "tubespam_train.csv").exists():
            return Path(c)
    raise FileNotFoundError("labelled data not found: pass --data DIR or set REPLYFLOW_POLICY_DATA")


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def load_tubespam(path: Path) -> tuple[list[str], list[int]]:
    rows = read_csv(path)
    col = "text" if rows and "text" in rows[0] else "CONTENT"
    return [r[col] for r in rows], [int(r["label"] if "label" in r else r["CLASS"]) for r in rows]


def load_davidson(path: Path) -> tuple[list[str], list[str], list[int]]:
    """``(ids, texts, class)``; abusive = class 0 (hate) or 1 (offensive)."""
    rows = read_csv(path)
    col = "tweet" if rows and "tweet" in rows[0] else "text"
    ids = [r.get("id") or r.get("") or str(i) for i, r in enumerate(rows)]
    return ids, [r[col] for r in rows], [int(r["class"]) for r in rows]


def _rank(row_id: str) -> str:
    return hashlib.sha256(f"{SPLIT_SALT}:{row_id}".encode()).hexdigest()


def davidson_split(ids: Sequence[str], classes: Sequence[int]) -> tuple[list[int], list[int]]:
    """Deterministic stratified split: per class, the 30 % of rows with the smallest salted hash
    of their id are held out. Returns ``(train_positions, heldout_positions)``."""
    heldout: set[int] = set()
    for c in sorted(set(classes)):
        pos = sorted((i for i, k in enumerate(classes) if k == c), key=lambda i: _rank(ids[i]))
        heldout.update(pos[: round(HELDOUT_FRACTION * len(pos))])
    train = [i for i in range(len(ids)) if i not in heldout]
    return train, sorted(heldout)


def ids_digest(ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()
