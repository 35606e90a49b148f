"""Teacher labels: a strong model behind an API reads the training images, beside each catalogue label.

    python -m amlc.teacher --sample OUT/sample.csv --output OUT/teacher.csv \\
        api.base_url=https://... api.model=... api.api_key_env=MY_KEY [--max-rows 2000]

The catalogue's labels are noisy: some values are not printed on the image at all, some are another
product's. A large vision-language model (a hosted one, or a big open one on `vllm serve`) asked the
training prompt over the training images gives a second opinion on every row. This runs the `api`
engine over the sample's rows of `--split` (train by default) through the shard runner (so it fetches
missing images, resumes after a kill and keeps the api engine's response cache), then writes:

    teacher.csv   the sample's rows: index, split, image_link, entity_name, entity_value, target (the
                  label as amlc.units makes it), teacher_answer (the teacher's normalised answer, ""
                  when none), teacher_confidence, teacher_reason (model_blank: it answered nothing,
                  i.e. it finds the value not printed; unparseable; error: ...), teacher_raw, agree
                  (teacher_answer equals target by number and unit)

and prints the counts and the api summary (requests, tokens, money spent and what every row would
cost). The dataset stage uses the file (`dataset.teacher_labels`, amlc.swift_data): keep only the
training rows where catalogue and teacher agree (`dataset.teacher_keep_agreeing`), and/or teach the rows
the teacher finds unprinted to answer nothing (`dataset.teacher_abstain`).

The shard files and the api cache live in `--work-dir` (default: beside the output, `<name>-work/`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from amlc.errors import ArgumentParser, InputError

COLUMNS = ("index", "split", "image_link", "entity_name", "entity_value", "target", "teacher_answer",
           "teacher_confidence", "teacher_reason", "teacher_raw", "agree")


def label(cfg: dict[str, Any], sample_csv: str | Path, output: str | Path, *, split: str = "train",
          max_rows: int | None = None, images_dir: str | Path | None = None,
          work_dir: str | Path | None = None, progress: bool = True, log=None):
    """Run the teacher over the sample's rows; write `output` (see the module docstring).

    Returns (the written DataFrame, the shard runner's ShardSummary).
    """
    import pandas as pd

    from amlc import units
    from amlc.inference import run_shard
    from amlc.metric import is_match
    from amlc.shards import merge_shards
    from amlc.tables import read_csv, write_csv

    sample = read_csv(sample_csv, required=["index", "image_link", "entity_name", "entity_value"],
                      what="sample file")
    rows = sample if split == "all" or "split" not in sample.columns else sample[sample["split"] == split]
    if max_rows is not None and len(rows) > max_rows:
        rows = rows.sample(n=max_rows, random_state=int(cfg["run"]["seed"])).sort_index()
    if rows.empty:
        raise InputError(f"{sample_csv} has no rows of split {split!r}")
    output = Path(output)
    work = Path(work_dir) if work_dir else output.with_name(f"{output.stem}-work")
    work.mkdir(parents=True, exist_ok=True)
    input_csv = work / "input.csv"
    keep = [c for c in ("index", "image_link", "group_id", "entity_name") if c in rows.columns]
    write_csv(rows[keep], input_csv)

    cfg = {**cfg, "inference": {**cfg["inference"], "thresholds": {}}}  # the teacher's raw opinion
    summary = run_shard(cfg, 0, 1, input_csv=input_csv, images_dir=images_dir, output_dir=work / "preds",
                        engine="api", progress=progress, log=log)
    merged = merge_shards(work / "preds", [int(i) for i in rows["index"]])
    policy = cfg["postprocess"]["range_policy"]
    out = []
    for row, rec in zip(rows.itertuples(index=False), merged.records):
        target = units.normalize(row.entity_value, row.entity_name, policy)
        answer = rec.get("candidate") or ""
        out.append({"index": int(row.index), "split": getattr(row, "split", ""), "image_link": row.image_link,
                    "entity_name": row.entity_name, "entity_value": row.entity_value, "target": target,
                    "teacher_answer": answer, "teacher_confidence": rec.get("confidence"),
                    "teacher_reason": "" if answer else rec.get("reason", ""), "teacher_raw": rec.get("raw", ""),
                    "agree": bool(answer and target and is_match(answer, target, acceptable=True))})
    frame = pd.DataFrame(out, columns=list(COLUMNS))
    write_csv(frame, output)
    return frame, summary


def counts_line(frame) -> str:
    n = len(frame)
    agree = int(frame["agree"].sum())
    blank = int((frame["teacher_reason"] == "model_blank").sum())
    errors = int(frame["teacher_reason"].astype(str).str.startswith(("error", "image_", "download_",
                                                                        "no_image")).sum())
    answered = int((frame["teacher_answer"] != "").sum())
    return (f"teacher: {n:,} rows; agrees with the catalogue on {agree:,}, answers otherwise on "
            f"{answered - agree:,}, finds the value unprinted on {blank:,}, other blanks "
            f"{n - answered - blank - errors:,}, not read (image or API errors) {errors:,}")


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m amlc.teacher", description=__doc__.splitlines()[0],
                                epilog="\n".join(__doc__.splitlines()[2:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="YAML", help="config file over the defaults (its api section)")
    p.add_argument("--sample", required=True, metavar="CSV",
                   help="the sample stage's sample.csv (index, image_link, entity_name, entity_value, split)")
    p.add_argument("--output", required=True, metavar="CSV", help="where teacher.csv goes")
    p.add_argument("--split", default="train", choices=["train", "val", "all"],
                   help="which rows to label (default train: the rows the dataset stage curates)")
    p.add_argument("--max-rows", type=int, metavar="N", help="label a seeded random N of them (cost control)")
    p.add_argument("--images", metavar="DIR", help="image folder; missing images are fetched into it; "
                                                   "default: data.images_dir")
    p.add_argument("--work-dir", metavar="DIR", help="shard file and api cache; default <output>-work/ beside it")
    p.add_argument("--no-download", action="store_true", help="rows without an image on disk stay unlabelled")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. api.model=gpt-4o")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from amlc.config import load_config

    if args.max_rows is not None and args.max_rows < 1:
        raise InputError(f"--max-rows must be at least 1, got {args.max_rows}")
    overrides = list(args.overrides) + (["inference.download=false"] if args.no_download else [])
    cfg = load_config(args.config, overrides)
    frame, summary = label(cfg, args.sample, args.output, split=args.split, max_rows=args.max_rows,
                           images_dir=args.images, work_dir=args.work_dir, progress=not args.no_progress)
    print(summary.format())
    print(counts_line(frame))
    print(f"-> {args.output}")
    return 0


if __name__ == "__main__":
    from amlc.errors import cli

    sys.exit(cli(main))
