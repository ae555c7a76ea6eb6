"""Write small offline preference files, one per form the ``preferences`` source reads.

Responses come from the rule of ``make_text_set.py`` (on-topic or not, 0-3 concrete steps, a
polite or dismissive opening, a safety caveat, plus noise, each with a fixed effect on a score);
nothing is copied from a dataset. For each of the 75 "How do I ...?" tasks, three pairs of two
fresh responses are drawn; the one with the higher score is ``chosen``, ``margin`` is the score
gap, a gap below 0.3 is a ``tie`` (``pref-explicit.jsonl`` only), and the task's subset is
``home``, ``food`` or ``learning`` (by task position). The multi-response file gives each task
four responses with their scores.

- ``pref-explicit.jsonl``: prompt, chosen, rejected, subset, margin, tie (225 rows);
- ``pref-implicit.jsonl``: chosen and rejected only, the prompt their shared prefix (225 rows);
- ``pref-conversational.jsonl``: message lists (user prompt; one assistant reply each);
- ``pref-multi.jsonl``: prompt, responses (4), scores (75 rows).

Run ``python tests/data/make_preference_sets.py`` to regenerate.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from make_text_set import TASKS, response

HERE = Path(__file__).parent
SUBSETS = ("home", "food", "learning")
PAIRS_PER_TASK = 3
TIE_GAP = 0.3


def pairs(rng: np.random.Generator):
    for index, task in enumerate(TASKS):
        for _ in range(PAIRS_PER_TASK):
            drawn = []
            for _ in range(2):
                other = TASKS[(index + int(rng.integers(1, len(TASKS)))) % len(TASKS)]
                drawn.append(response(rng, task, other))
            while drawn[0][0] == drawn[1][0]:  # identical texts are refused by the source
                drawn[1] = response(rng, task, TASKS[(index + 1) % len(TASKS)])
            (good, good_score), (bad, bad_score) = sorted(drawn, key=lambda d: -d[1])
            yield index, task, good.strip(), bad.strip(), good_score - bad_score


def write(name: str, rows: list[dict]) -> None:
    (HERE / name).write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"{HERE / name}: {len(rows)} rows")


def main() -> None:
    rng = np.random.default_rng(20250606)
    explicit, implicit, conversational = [], [], []
    for index, task, good, bad, gap in pairs(rng):
        prompt = f"How do I {task}?"
        explicit.append(
            {
                "prompt": prompt,
                "chosen": good,
                "rejected": bad,
                "subset": SUBSETS[index % len(SUBSETS)],
                "margin": round(gap, 4) if gap >= TIE_GAP else 0.0,
                "tie": bool(gap < TIE_GAP),
            }
        )
        dialogue = f"Human: {prompt}\n\nAssistant:"
        implicit.append({"chosen": f"{dialogue} {good}", "rejected": f"{dialogue} {bad}"})
        user = [{"role": "user", "content": prompt}]
        conversational.append(
            {
                "prompt": user,
                "chosen": [{"role": "assistant", "content": good}],
                "rejected": [{"role": "assistant", "content": bad}],
            }
        )
    multi = []
    for index, task in enumerate(TASKS):
        drawn = []
        while len(drawn) < 4:
            other = TASKS[(index + int(rng.integers(1, len(TASKS)))) % len(TASKS)]
            text, score = response(rng, task, other)
            if text not in [d[0] for d in drawn]:
                drawn.append((text, score))
        multi.append(
            {
                "prompt": f"How do I {task}?",
                "responses": [t.strip() for t, _ in drawn],
                "scores": [s for _, s in drawn],
                "subset": SUBSETS[index % len(SUBSETS)],
            }
        )
    write("pref-explicit.jsonl", explicit)
    write("pref-implicit.jsonl", implicit)
    write("pref-conversational.jsonl", conversational)
    write("pref-multi.jsonl", multi)


if __name__ == "__main__":
    main()
