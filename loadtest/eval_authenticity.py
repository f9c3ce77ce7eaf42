"""Evaluate the authenticity model: does a creator's own held-out voice outrank everyone else?

    PYTHONPATH=services python -m loadtest.eval_authenticity [--repeats 5] [--out PATH]

Data: ``loadtest/data/authenticity/`` (fictional creators, one reply per line, plus generic
assistant-style replies). For each creator and each random split, the model is fitted on
``train`` of their replies and scores the held-out rest, every reply of the other creators and
the generic replies. Reported per creator and as a macro average over creators:

- ``auc_vs_others``: ROC AUC of own held-out replies against other creators' replies;
- ``auc_vs_generic``: ROC AUC of own held-out replies against generic assistant text;
- the same at smaller training sizes (a new creator has few examples);
- per-message cost: wall time of every ``score()`` call during the evaluation
  (``time.perf_counter_ns``; includes noise from other processes), and CPU time per call of a
  batch loop (``time.process_time_ns``) for ``score()`` and for the whole verify path
  (``run_checks`` + ``score``) over the dataset.

Writes ``loadtest/reports/eval-authenticity.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

from replyflow.events import CreatorProfile
from replyflow.policy.authenticity import AuthenticityModel
from replyflow.policy.verify_checks import run_checks

DATA_DIR = Path(__file__).parent / "data" / "authenticity"
REPORT = Path(__file__).parent / "reports" / "eval-authenticity.json"


def roc_auc(positives: list[float], negatives: list[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    if not positives or not negatives:
        raise ValueError("need positives and negatives")
    ranked = sorted([(s, 1) for s in positives] + [(s, 0) for s in negatives])
    # Average ranks over ties (Mann–Whitney U).
    rank_sum = 0.0
    i = 0
    while i < len(ranked):
        j = i
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        avg_rank = (i + j) / 2 + 1
        rank_sum += avg_rank * sum(1 for k in range(i, j + 1) if ranked[k][1] == 1)
        i = j + 1
    n_pos, n_neg = len(positives), len(negatives)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def load_dataset(data_dir: Path = DATA_DIR) -> tuple[dict[str, list[str]], list[str], dict]:
    meta = json.loads((data_dir / "creators.json").read_text(encoding="utf-8"))

    def lines(name: str) -> list[str]:
        return [ln.strip() for ln in (data_dir / name).read_text(encoding="utf-8").splitlines() if ln.strip()]

    creators = {c["creator_id"]: lines(c["file"]) for c in meta["creators"]}
    return creators, lines(meta["generic"]["file"]), meta


def evaluate(
    creators: dict[str, list[str]],
    generic: list[str],
    *,
    train_sizes: tuple[int, ...] = (5, 10, 25),
    repeats: int = 5,
    seed: int = 7,
) -> dict:
    rng = random.Random(seed)
    timings_ns: list[int] = []
    results: dict[str, dict[str, dict[str, float]]] = {}
    for cid, replies in creators.items():
        others = [r for other, rs in creators.items() if other != cid for r in rs]
        per_size: dict[str, dict[str, float]] = {}
        for size in train_sizes:
            if size >= len(replies):
                continue
            auc_o, auc_g, own_mean, oth_mean, gen_mean = [], [], [], [], []
            for _ in range(repeats):
                shuffled = replies[:]
                rng.shuffle(shuffled)
                train, test = shuffled[:size], shuffled[size:]
                model = AuthenticityModel().fit(train)

                def score_all(texts: list[str], model: AuthenticityModel = model) -> list[float]:
                    out = []
                    for t in texts:
                        t0 = time.perf_counter_ns()
                        out.append(model.score(t))
                        timings_ns.append(time.perf_counter_ns() - t0)
                    return out

                s_own, s_oth, s_gen = score_all(test), score_all(others), score_all(generic)
                auc_o.append(roc_auc(s_own, s_oth))
                auc_g.append(roc_auc(s_own, s_gen))
                own_mean.append(statistics.fmean(s_own))
                oth_mean.append(statistics.fmean(s_oth))
                gen_mean.append(statistics.fmean(s_gen))
            per_size[str(size)] = {
                "auc_vs_others": round(statistics.fmean(auc_o), 4),
                "auc_vs_others_min": round(min(auc_o), 4),
                "auc_vs_generic": round(statistics.fmean(auc_g), 4),
                "auc_vs_generic_min": round(min(auc_g), 4),
                "mean_score_own": round(statistics.fmean(own_mean), 3),
                "mean_score_others": round(statistics.fmean(oth_mean), 3),
                "mean_score_generic": round(statistics.fmean(gen_mean), 3),
            }
        results[cid] = per_size
    macro = {}
    for size in {s for r in results.values() for s in r}:
        rows = [r[size] for r in results.values() if size in r]
        macro[size] = {
            key: round(statistics.fmean(row[key] for row in rows), 4)
            for key in ("auc_vs_others", "auc_vs_generic", "mean_score_own", "mean_score_others")
        }
    timings_us = sorted(t / 1000 for t in timings_ns)
    return {
        "per_creator": results,
        "macro": dict(sorted(macro.items(), key=lambda kv: int(kv[0]))),
        "score_time_us": {
            "mean": round(statistics.fmean(timings_us), 1),
            "p50": round(timings_us[len(timings_us) // 2], 1),
            "p95": round(timings_us[int(len(timings_us) * 0.95)], 1),
            "calls": len(timings_us),
        },
    }


def cpu_cost(creators: dict[str, list[str]], generic: list[str], rounds: int = 3) -> dict[str, float]:
    """CPU µs per call (process time of a batch loop) for score() and for run_checks() + score()."""
    texts = [t for rs in creators.values() for t in rs] + generic
    first = next(iter(creators))
    examples = creators[first][:25]
    profile = CreatorProfile(
        creator_id=first,
        display_name=first,
        persona="A fictional creator used to time the verify path.",
        example_replies=examples,
        topics_to_avoid=["politics", "weight loss"],
        banned_words=["cheap"],
        allowed_links=["example.com"],
    )
    t0 = time.process_time_ns()
    model = AuthenticityModel().fit(examples)
    fit_us = (time.process_time_ns() - t0) / 1000
    model.score(texts[0])  # warm caches (language profiles, compiled patterns)
    run_checks(texts[0], "Great video!", profile)
    t0 = time.process_time_ns()
    for _ in range(rounds):
        for t in texts:
            model.score(t)
    score_us = (time.process_time_ns() - t0) / 1000 / (rounds * len(texts))
    t0 = time.process_time_ns()
    for _ in range(rounds):
        for t in texts:
            run_checks(t, "Great video!", profile)
            model.score(t)
    verify_us = (time.process_time_ns() - t0) / 1000 / (rounds * len(texts))
    return {
        "fit_25_examples_us": round(fit_us, 1),
        "score_cpu_us_per_call": round(score_us, 1),
        "run_checks_plus_score_cpu_us_per_call": round(verify_us, 1),
        "mean_chars": round(statistics.fmean(len(t) for t in texts), 1),
        "calls": rounds * len(texts),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5, help="random splits per creator and train size")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=REPORT)
    args = parser.parse_args(argv)

    creators, generic, _meta = load_dataset()
    report = evaluate(creators, generic, repeats=args.repeats, seed=args.seed)
    report["cpu_cost"] = cpu_cost(creators, generic)
    report = {
        "dataset": {
            "creators": {cid: len(r) for cid, r in creators.items()},
            "generic_replies": len(generic),
            "source": "loadtest/data/authenticity (fictional, written for replyflow)",
        },
        "method": "fit on a random train split per creator, score held-out own vs all other creators' "
        f"replies vs generic assistant replies; {args.repeats} splits per size, seed {args.seed}",
        **report,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    header = ("creator", "train", "AUC others", "AUC generic", "own", "others", "generic")
    print("{:<18}{:>6}{:>12}{:>13}{:>7}{:>8}{:>9}".format(*header))
    for cid, sizes in report["per_creator"].items():
        for size, r in sizes.items():
            print(
                f"{cid:<18}{size:>6}{r['auc_vs_others']:>12.3f}{r['auc_vs_generic']:>13.3f}"
                f"{r['mean_score_own']:>7.2f}{r['mean_score_others']:>8.2f}{r['mean_score_generic']:>9.2f}"
            )
    for size, r in report["macro"].items():
        print(f"{'MACRO':<18}{size:>6}{r['auc_vs_others']:>12.3f}{r['auc_vs_generic']:>13.3f}")
    t = report["score_time_us"]
    print(f"score() wall: mean {t['mean']} µs, p50 {t['p50']} µs, p95 {t['p95']} µs over {t['calls']} calls")
    c = report["cpu_cost"]
    print(
        f"CPU per call: score() {c['score_cpu_us_per_call']} µs, run_checks()+score() "
        f"{c['run_checks_plus_score_cpu_us_per_call']} µs (mean {c['mean_chars']} chars); "
        f"fit(25 examples) {c['fit_25_examples_us']} µs"
    )
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
