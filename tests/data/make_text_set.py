"""Write ``text-set.jsonl``: a small offline prompt/response set with known golden rewards.

Each response to a "How do I ...?" prompt is assembled from parts whose effect on the golden
reward is fixed: on-topic (+2) or about another task (−1.5), 0–3 concrete steps (+0.9 each), a
polite opening (+0.6) or a dismissive one (−1.2), a safety caveat (+0.4), plus N(0, 0.3²) noise.
A sentence embedding sees all of these, so reward heads trained on it can learn the reward.
Long form, one row per response, with a ``split`` column: 60 train prompts × 6 responses and
15 test prompts × 12 responses. Run ``python tests/data/make_text_set.py`` to regenerate.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

TASKS = [
    "bake sourdough bread",
    "change a flat bicycle tire",
    "start a vegetable garden",
    "learn to play the guitar",
    "write a cover letter",
    "clean a cast iron pan",
    "train a puppy to sit",
    "save money on groceries",
    "prepare for a job interview",
    "set up a home aquarium",
    "paint a bedroom wall",
    "make cold brew coffee",
    "improve my sleep",
    "learn a new language",
    "fix a leaking faucet",
    "plan a road trip",
    "build a bookshelf",
    "start running as a beginner",
    "back up my computer",
    "care for a succulent",
    "write a short story",
    "organize my closet",
    "make homemade pasta",
    "reduce stress at work",
    "learn basic photography",
    "brew green tea properly",
    "prepare a budget",
    "start a podcast",
    "knit a scarf",
    "choose a laptop",
    "keep houseplants alive",
    "cook rice on the stove",
    "study for an exam",
    "teach a child to ride a bike",
    "make a paper airplane",
    "wash a wool sweater",
    "start meditating",
    "give a good presentation",
    "make a compost pile",
    "stretch after exercise",
    "write a thank-you note",
    "remove a coffee stain",
    "learn to swim",
    "set up a fish tank filter",
    "plant a tree",
    "make pancakes",
    "sharpen a kitchen knife",
    "take notes in class",
    "negotiate a salary",
    "decorate a small apartment",
    "grill vegetables",
    "make a smoothie",
    "fold a fitted sheet",
    "create a strong password",
    "start journaling",
    "repot a plant",
    "make a budget spreadsheet",
    "learn to juggle",
    "hang a picture frame",
    "prepare a picnic",
    "make iced tea",
    "clean a laptop keyboard",
    "train for a 5k race",
    "write a haiku",
    "organize a bookshelf",
    "make guacamole",
    "care for a new kitten",
    "sew a button",
    "plan a birthday party",
    "improve my handwriting",
    "make french toast",
    "read more books",
    "wake up earlier",
    "descale a kettle",
    "pack a suitcase",
]
STEPS = [
    "First, gather everything you need to {task} and read one trusted guide.",
    "Next, set aside a quiet hour and work through it slowly, one step at a time.",
    "Finally, check the result, note what went wrong, and adjust next time.",
]
POLITE = ["Great question! Happy to help.", "Sure, here is a simple way to do it."]
RUDE = ["Honestly, just figure it out yourself.", "Why would you even ask that?"]
CAVEAT = "Be careful and take breaks if anything feels unsafe."


def response(rng: np.random.Generator, task: str, other: str) -> tuple[str, float]:
    on_topic = rng.random() < 0.75
    subject = task if on_topic else other
    steps = int(rng.integers(0, 4))
    tone = rng.choice(["polite", "neutral", "rude"], p=[0.4, 0.35, 0.25])
    caveat = rng.random() < 0.3
    parts = []
    if tone == "polite":
        parts.append(str(rng.choice(POLITE)))
    elif tone == "rude":
        parts.append(str(rng.choice(RUDE)))
    parts.append(f"To {subject}, you can follow a few steps.")
    parts.extend(step.format(task=subject) for step in STEPS[:steps])
    if caveat:
        parts.append(CAVEAT)
    reward = (
        (2.0 if on_topic else -1.5)
        + 0.9 * steps
        + {"polite": 0.6, "neutral": 0.0, "rude": -1.2}[str(tone)]
        + (0.4 if caveat else 0.0)
        + rng.normal(0, 0.3)
    )
    return " " + " ".join(parts), round(float(reward), 4)


def main() -> None:
    rng = np.random.default_rng(20250101)
    order = rng.permutation(len(TASKS))
    rows = []
    for n, index in enumerate(order):
        split, responses = ("train", 6) if n < 60 else ("test", 12)
        task = TASKS[index]
        prompt = f"\n\nHuman: How do I {task}?\n\nAssistant:"
        for _ in range(responses):
            other = TASKS[(index + int(rng.integers(1, len(TASKS)))) % len(TASKS)]
            text, reward = response(rng, task, other)
            rows.append({"prompt": prompt, "response": text, "reward": reward, "split": split})
    out = Path(__file__).with_name("text-set.jsonl")
    out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"{out}: {len(rows)} rows")


if __name__ == "__main__":
    main()
