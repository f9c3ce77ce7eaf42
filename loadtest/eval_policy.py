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
  obfuscated insults and clean comments; reported for all rows and per ``split`` (``dev``: the
  rules were tuned on them; ``fresh``: written afterwards, scored as they came).
- the abuse check's flag rate on ``tubespam_val`` (YouTube comments without abuse labels).

``--csv PATH`` scores any CSV instead: a ``label`` column means the spam format (text in
``text``/``CONTENT``), a ``class`` column the Davidson format (text in ``tweet``/``text``).
``--bench`` also measures throughput of the whole screen (``TextScreener.screen``) on one
core in micro-batches. Prints a table and writes ``loadtest/reports/eval-policy.json``: one
object per (check, dataset) with ``check``, ``dataset``, ``precision``, ``recall``, ``f1``,
``macro_f1``, ``n`` (plus ``tp``/``fp``/``fn``/``tn``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import time
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


# ----------------------------------------------------------------------------------------------
# metrics


def binary_metrics(y_true: Sequence[int], y_pred: Sequence[int]) -> dict:
    tp = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t and p)
    fp = sum(1 for t, p in zip(y_true, y_pred, strict=True) if not t and p)
    fn = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t and not p)
    tn = len(y_true) - tp - fp - fn

    def f1(tp_: int, fp_: int, fn_: int) -> float:
        return 2 * tp_ / (2 * tp_ + fp_ + fn_) if tp_ else 0.0

    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f_pos, f_neg = f1(tp, fp, fn), f1(tn, fn, fp)
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f_pos, 4),
            "macro_f1": round((f_pos + f_neg) / 2, 4), "n": len(y_true),
            "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def row(check: str, dataset: str, y_true: Sequence[int], y_pred: Sequence[int], **extra) -> dict:
    return {"check": check, "dataset": dataset, **binary_metrics(y_true, y_pred), **extra}


# ----------------------------------------------------------------------------------------------
# evaluations


def _fires(findings) -> int:
    return int(bool(findings))


def eval_spam(texts: list[str], labels: list[int], dataset: str) -> list[dict]:
    from replyflow.policy.classifiers import SpamClassifier, detect_scam_patterns

    model = SpamClassifier.load()
    spam = [int(s >= model.threshold) for s in model.scores(texts)]
    scam = [_fires(detect_scam_patterns(t)) for t in texts]
    either = [int(a or b) for a, b in zip(spam, scam, strict=True)]
    return [row("spam", dataset, labels, spam), row("scam", dataset, labels, scam),
            row("spam_or_scam", dataset, labels, either)]


def eval_abuse(texts: list[str], classes: list[int], dataset: str) -> list[dict]:
    from replyflow.policy.classifiers import AbuseClassifier

    model = AbuseClassifier.load()
    y = [int(c in (0, 1)) for c in classes]
    pred = [int(s >= model.threshold) for s in model.scores(texts)]
    return [row("abuse", dataset, y, pred)]


def check_split(model_meta: dict, ids: Sequence[str], train_pos: Sequence[int]) -> None:
    expected = model_meta.get("train_ids_sha256")
    actual = ids_digest([ids[i] for i in train_pos])
    if expected != actual:
        raise SystemExit(f"the abuse model was not trained on the training part of this davidson split "
                         f"(model {expected}, split {actual}): retrain with scripts/train_policy_models.py")


def eval_injection_set(path: Path = INJECTION_SET) -> tuple[list[dict], list[dict]]:
    """Rows: ``{"id", "text", "category", "lang", "injection": 0|1, "abuse": 0|1, "split"}``.

    ``split`` is ``dev`` for the rows written while the detectors were developed (they were
    tuned until these passed) and ``fresh`` for rows written afterwards and scored once; the
    table reports all rows and each split.
    """
    from replyflow.policy.classifiers import AbuseClassifier, detect_prompt_injection

    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [it["text"] for it in items]
    inj = [_fires(detect_prompt_injection(t)) for t in texts]
    model = AbuseClassifier.load()
    abuse = [int(s >= model.threshold) for s in model.scores(texts)]
    rows = []
    for name, keep in (("injection_evasion", lambda it: True),
                       ("injection_evasion_dev", lambda it: it.get("split", "dev") == "dev"),
                       ("injection_evasion_fresh", lambda it: it.get("split") == "fresh")):
        idx = [i for i, it in enumerate(items) if keep(it)]
        if not idx:
            continue
        for check, got in (("prompt_injection", inj), ("abuse", abuse)):
            key = "injection" if check == "prompt_injection" else "abuse"
            rows.append(row(check, name, [items[i][key] for i in idx], [got[i] for i in idx]))
    misses = [
        {"id": it["id"], "category": it["category"], "text": it["text"],
         "expected": {"injection": it["injection"], "abuse": it["abuse"]},
         "got": {"injection": i, "abuse": a}}
        for it, i, a in zip(items, inj, abuse, strict=True) if i != it["injection"] or a != it["abuse"]
    ]
    return rows, misses


def abuse_flag_rate(texts: list[str], dataset: str) -> dict:
    """How often the abuse check fires on comments with no abuse labels (YouTube comments, mostly clean)."""
    from replyflow.policy.classifiers import AbuseClassifier

    model = AbuseClassifier.load()
    flagged = sum(s >= model.threshold for s in model.scores(texts))
    return {"check": "abuse", "dataset": dataset, "precision": None, "recall": None, "f1": None,
            "macro_f1": None, "n": len(texts), "flagged": flagged,
            "flag_rate": round(flagged / len(texts), 4)}


def eval_csv(path: Path) -> list[dict]:
    rows = read_csv(path)
    if not rows:
        raise SystemExit(f"{path} has no rows")
    cols = set(rows[0])
    if "label" in cols or "CLASS" in cols:
        texts, labels = load_tubespam(path)
        return eval_spam(texts, labels, path.name)
    if "class" in cols:
        _, texts, classes = load_davidson(path)
        return eval_abuse(texts, classes, path.name)
    raise SystemExit(f"{path}: need a 'label' column (spam format) or a 'class' column (davidson format)")


def bench(texts: list[str], batch: int = 64, seconds: float = 5.0) -> dict:
    """Comments per second of ``TextScreener.screen`` on this process (one core), micro-batches of ``batch``.

    Models are loaded before timing. One first pass with cold per-word caches, then wall time
    (``perf_counter``) and CPU time (``process_time``) over repeated passes until ``seconds`` have
    elapsed; every per-text cache is cleared before each pass so repeated texts are not free (per-word
    caches stay warm, as in a long-running service).
    """
    from replyflow.policy import classifiers, textnorm

    per_text_caches = (classifiers._lex_tokens, classifiers._lexicon_counts, classifiers._lexicon_terms,
                       classifiers._prepared, classifiers._words, textnorm.normalize_views)

    screener = classifiers.TextScreener.load()
    screener.screen(["warm up"])
    c_cold = time.process_time()
    for i in range(0, len(texts), batch):  # first pass: every per-word cache is cold
        screener.screen(texts[i : i + batch])
    cold = time.process_time() - c_cold
    done = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        for per_text in per_text_caches:
            per_text.cache_clear()
        for i in range(0, len(texts), batch):
            screener.screen(texts[i : i + batch])
        done += len(texts)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"batch": batch, "texts": done, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "texts_per_s_wall": round(done / wall), "texts_per_s_cpu": round(done / cpu),
            "first_pass_texts_per_s_cpu": round(len(texts) / cold),
            "mean_chars": round(sum(map(len, texts)) / len(texts), 1)}


def print_table(rows: list[dict]) -> None:
    head = f"{'check':<18}{'dataset':<25}{'precision':>10}{'recall':>8}{'f1':>8}{'macro_f1':>10}{'n':>7}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['check']:<18}{r['dataset']:<25}{r['precision']:>10.4f}{r['recall']:>8.4f}{r['f1']:>8.4f}"
              f"{r['macro_f1']:>10.4f}{r['n']:>7}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Evaluate the screen stage's text checks on unseen labelled "
                                 "rows.")
    ap.add_argument("--csv", help="score this CSV instead (spam format: 'label' column; davidson format: "
                    "'class')")
    ap.add_argument("--data", help="directory with tubespam_val.csv and davidson_dev.csv")
    ap.add_argument("--bench", action="store_true", help="also measure throughput of the whole screen")
    ap.add_argument("--out", default=str(REPORT), help="where to write the JSON report")
    args = ap.parse_args(argv)

    if args.csv:
        rows = eval_csv(Path(args.csv))
        misses: list[dict] = []
    else:
        from replyflow.policy.classifiers import AbuseClassifier

        src = data_dir(args.data)
        texts, labels = load_tubespam(src / "tubespam_val.csv")
        rows = eval_spam(texts, labels, "tubespam_val")
        flag_rate = abuse_flag_rate(texts, "tubespam_val")
        ids, dtexts, classes = load_davidson(src / "davidson_dev.csv")
        train_pos, heldout = davidson_split(ids, classes)
        check_split(AbuseClassifier.load().model.meta, ids, train_pos)
        rows += eval_abuse([dtexts[i] for i in heldout], [classes[i] for i in heldout], "davidson_heldout")
        inj_rows, misses = eval_injection_set()
        rows += inj_rows
    print_table(rows)
    if not args.csv:
        print(f"\nabuse fires on {flag_rate['flagged']} of {flag_rate['n']} tubespam_val comments (no abuse "
              f"labels; flag rate {flag_rate['flag_rate']:.3f})")
        rows.append(flag_rate)
    if misses:
        print(f"\n{len(misses)} injection_evasion rows misclassified:")
        for m in misses:
            print(f"  {m['id']:<10} {m['category']:<22} expected {m['expected']} got {m['got']}: "
                  f"{m['text'][:70]!r}")
    if args.bench:
        src = data_dir(args.data)
        sample = load_tubespam(src / "tubespam_val.csv")[0]
        sample += load_davidson(src / "davidson_dev.csv")[1][:1000]
        b = bench(sample)
        print(f"\nthroughput, whole screen, one process: {b['texts_per_s_wall']} texts/s wall, "
              f"{b['texts_per_s_cpu']} texts/s CPU, first pass with cold caches "
              f"{b['first_pass_texts_per_s_cpu']} texts/s CPU (batch {b['batch']}, {b['texts']} texts, "
              f"mean {b['mean_chars']} chars)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
