"""The organisers' dummy baseline, on our package: `python sample_code.py [--dataset DIR] [--output CSV]`.

Reads DIR/test.csv (default: the project's dataset/ folder), predicts "10 inch" for about half the rows
at random (seeded) and "" otherwise, as the organisers' example did, but passes every value through
amlc.units so the file it writes is valid for every entity ("10 inch" is no answer for a weight, so it
is blank). It writes outputs/test_out.csv by default: dataset/ holds the competition's files and is
never written. Replace `predictor` with a real model; everything else stays.
"""
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))

from amlc.errors import ArgumentParser, cli  # noqa: E402
from amlc.paths import DATASET_DIR, OUTPUTS_DIR  # noqa: E402
from amlc.tables import read_csv, write_csv  # noqa: E402
from amlc.units import normalize  # noqa: E402


def predictor(image_link, category_id, entity_name, rng=random):
    """Call your model/approach here."""
    return "" if rng.random() > 0.5 else "10 inch"


def main(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str(DATASET_DIR),
                        help="folder holding test.csv (default: the project's dataset/)")
    parser.add_argument("--output", default=str(OUTPUTS_DIR / "test_out.csv"),
                        help="output CSV (default: the project's outputs/test_out.csv)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = parser.parse_args(argv)
    test = read_csv(os.path.join(args.dataset, "test.csv"),
                    ["index", "image_link", "group_id", "entity_name"], "test file")
    rng = random.Random(args.seed)
    test["prediction"] = [
        normalize(predictor(link, group, entity, rng), entity)
        for link, group, entity in zip(test["image_link"], test["group_id"], test["entity_name"])
    ]
    write_csv(test[["index", "prediction"]], args.output)
    print(f"wrote {args.output} ({len(test)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(cli(main))
