"""``lenet5 weights``: the shipped weights, their cards, and a check of their files."""

from __future__ import annotations

import json

from ..weights import get_weights, list_weights


def add_parser(sub) -> None:
    p = sub.add_parser(
        "weights", help="list the shipped weights (ready to use, no training needed)",
        description="The weights shipped inside lenet5: each file's model, dataset, test "
        "accuracy, the command that trained it and the SHA-256 of its data and of the file. "
        "Use a name wherever a checkpoint path goes (`lenet5 eval modern.mnist`), or in "
        "Python: lenet5.create_model('modern', weights='mnist').")
    p.add_argument("name", nargs="?", help="show one entry in full and verify its file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def _card(name: str, verify: bool) -> dict:
    w = get_weights(name)
    card = {"name": w.name, "model": w.model, "dataset": w.dataset, "task": w.task,
            "test_accuracy": w.accuracy, "command": w.command, "file": w.file,
            "sha256": w.sha256, "dataset_sha256": w.dataset_sha256}
    if w.description:
        card["description"] = w.description
    if verify:
        w.verify()
        card["verified"] = True
    return card


def run(args) -> int:
    names = [args.name] if args.name else list_weights()
    cards = [_card(n, verify=bool(args.name)) for n in names]
    if args.json:
        print(json.dumps(cards if not args.name else cards[0], indent=2))
    elif args.name:
        width = max(map(len, cards[0]))
        for key, value in cards[0].items():
            print(f"{key:<{width}}  {value}")
    else:
        print(format_table(cards))
    return 0


def format_table(cards: list[dict]) -> str:
    if not cards:
        return "no shipped weights"
    head = ("name", "model", "dataset", "test acc", "command")
    rows = [(c["name"], c["model"], c["dataset"], f"{c['test_accuracy']:.4f}", c["command"])
            for c in cards]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()
                     for r in [head, *rows])
