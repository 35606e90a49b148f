"""Score predictions against labels: the competition's F1, per entity, before and after postprocessing.

Labels: any CSV with `index`, `entity_name` and either `entity_value` (exact-match scoring, as on the
leaderboard) or `acceptable` (answers separated by "|", matched by number and unit: dims_dev).
Predictions: the submission (`index,prediction`); raw predictions (`--raw`, same layout) are scored as
they are and after postprocessing, so the gain of the last mile is always visible. Every labelled
index must have a prediction (or pass --allow-missing to score absent rows as empty); a prediction
for an index the labels do not have is an error. The last line printed is `F1 0.xxxx`.

report.html (`--report`, amlc.report): the scores, errors by kind and a gallery of failures; the
labels' image_link finds thumbnails under `--images`, and a predictions file's optional `raw` (the
engine's own text) and `reason` columns are shown beside each failure.

metrics.json (`--metrics`): {"f1", "precision", "recall", "raw_f1" (or null), "value_f1", "rows",
"scoring", "rejected" (predictions the organisers' parser rejects: scored as wrong answers),
"per_entity": [{entity_name, tp, fp, fn, tn, rows, precision, recall, f1}, ...],
"raw_per_entity", "labels", "predictions", "raw"}. `value_f1` matches by number and unit ("500 gram"
equals "500.0 gram"): exact text is what we believe the leaderboard compares, and the headline; the
value match shows how much of the gap is formatting.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from amlc.errors import ArgumentParser, InputError, cli
from amlc.formats import load as load_styles
from amlc.metric import format_table, per_entity
from amlc.postprocess import postprocess_frame
from amlc.sanity import check_value
from amlc.tables import check_writable, line_of, read_csv, write_text


def read_labels(path: str | Path) -> tuple[pd.DataFrame, bool]:
    """(labels with a `truth` column, acceptable-mode?)."""
    labels = read_csv(path, ["index", "entity_name"], "labels file")
    if "entity_value" in labels.columns:
        return labels.assign(truth=labels["entity_value"]), False
    if "acceptable" in labels.columns:
        return labels.assign(truth=labels["acceptable"]), True
    raise InputError(f"labels file needs an entity_value or an acceptable column: {path}")


def join(labels: pd.DataFrame, preds: pd.DataFrame, what: str, allow_missing: bool) -> pd.Series:
    """The predictions in the labels' row order, "" for absent ones when allowed."""
    unknown = sorted(set(preds["index"]) - set(labels["index"]))
    if unknown:
        raise InputError(f"{what} has {len(unknown)} index(es) that the labels do not have, e.g. "
                         f"{unknown[:5]}")
    by_index = dict(zip(preds["index"], preds["prediction"]))
    missing = [i for i in labels["index"] if i not in by_index]
    if missing and not allow_missing:
        raise InputError(f"{what} lacks {len(missing)} labelled index(es), e.g. {missing[:5]} "
                         "(use --allow-missing to score them as empty)")
    return pd.Series([by_index.get(i, "") for i in labels["index"]], index=labels.index, dtype=object)


def _carry_text(rows: pd.DataFrame, labels: pd.DataFrame, preds: pd.DataFrame) -> None:
    """Copy the engine's own text (`raw`) and `reason` columns, when a predictions file has them,
    onto the scored rows for the error-analysis report."""
    for col in ("raw", "reason"):
        if col in preds.columns and col not in rows.columns:
            by_index = dict(zip(preds["index"], preds[col].fillna("").astype(str)))
            rows[col] = [by_index.get(i, "") for i in labels["index"]]


def evaluate(labels_path: str | Path, predictions_path: str | Path | None = None,
             raw_path: str | Path | None = None, allow_missing: bool = False,
             range_policy: str = "max", styles: str | Path | None = None) -> dict:
    if predictions_path is None and raw_path is None:
        raise InputError("give --predictions, --raw, or both")
    labels, acceptable = read_labels(labels_path)
    # image_link (for the report's thumbnails) rides along when the labels have it
    rows = labels[[c for c in ("index", "entity_name", "truth", "image_link") if c in labels.columns]].copy()
    raw_table = None
    if raw_path is not None:
        raw = read_csv(raw_path, ["index", "prediction"], "raw predictions file", check_entities=False)
        rows["raw_prediction"] = join(labels, raw, "raw predictions file", allow_missing)
        _carry_text(rows, labels, raw)
        raw_table = per_entity(rows, "raw_prediction", "truth", acceptable)
    rejected: list[tuple[int, object, str]] = []
    if predictions_path is not None:
        preds = read_csv(predictions_path, ["index", "prediction"], "predictions file",
                         check_entities=False)
        rows["prediction"] = join(labels, preds, "predictions file", allow_missing)
        _carry_text(rows, labels, preds)
        # what the leaderboard's parser would refuse (amlc.metric scores those rows as wrong)
        rejected = [(line_of(pos), value, why) for pos, value in enumerate(preds["prediction"])
                    if (why := check_value(value))]
    else:
        final, _ = postprocess_frame(labels, pd.DataFrame(
            {"index": labels["index"], "prediction": rows["raw_prediction"]}), range_policy,
            styles=load_styles(styles) if styles else None)
        rows["prediction"] = final["prediction"].to_numpy()
    table = per_entity(rows, "prediction", "truth", acceptable)
    # The same rows matched by number and unit ("500 gram" == "500.0 gram"): what the score would be
    # if the leaderboard parsed values instead of comparing strings. Shown beside, never instead.
    value_f1 = float(per_entity(rows, "prediction", "truth", True).iloc[-1]["f1"])
    return {"rows": rows, "table": table, "raw_table": raw_table, "acceptable": acceptable,
            "value_f1": value_f1, "rejected": rejected}


def metrics_dict(result: dict, labels: str, predictions: str | None, raw: str | None) -> dict:
    table, raw_table = result["table"], result["raw_table"]
    return {
        "f1": float(table.iloc[-1]["f1"]),
        "precision": float(table.iloc[-1]["precision"]),
        "recall": float(table.iloc[-1]["recall"]),
        "raw_f1": float(raw_table.iloc[-1]["f1"]) if raw_table is not None else None,
        "value_f1": result["value_f1"],
        "rows": int(table.iloc[-1]["rows"]),
        "scoring": "acceptable answers, number and unit" if result["acceptable"] else "exact match",
        "rejected": len(result["rejected"]),
        "per_entity": table.to_dict(orient="records"),
        "raw_per_entity": raw_table.to_dict(orient="records") if raw_table is not None else None,
        "labels": labels, "predictions": predictions, "raw": raw,
    }


def print_tables(result: dict) -> None:
    """The per-entity tables: before postprocessing (when raw predictions were given), then after."""
    if result["raw_table"] is not None:
        print("before postprocessing (raw predictions as given):")
        print(format_table(result["raw_table"]))
        print(f"raw F1 {result['raw_table'].iloc[-1]['f1']:.4f}\n")
        print("after postprocessing:")
    print(format_table(result["table"]))
    if not result["acceptable"]:
        print(f"(matched by number and unit instead of exact text, \"500 gram\" == \"500.0 gram\": "
              f"F1 {result['value_f1']:.4f})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="evaluate.py",
        description="Competition F1 (TP: both non-empty and equal; FP: wrong or answered where the "
                    "truth is empty; FN: blank where the truth is not), per entity, with and "
                    "without postprocessing. Ends with a line 'F1 0.xxxx'.")
    parser.add_argument("--labels", required=True,
                        help="CSV with index, entity_name and entity_value (exact match) or "
                             "acceptable ('|'-separated answers, matched by number and unit)")
    parser.add_argument("--predictions", help="submission CSV (index,prediction) to score")
    parser.add_argument("--raw", help="raw predictions CSV (index,prediction): scored as they are "
                                      "and after postprocessing (used as the submission when "
                                      "--predictions is not given)")
    parser.add_argument("--styles", metavar="JSON",
                        help="with --raw alone: postprocess as postprocessing.py --styles does "
                             "(whole numbers written as the labels of their kind write them)")
    parser.add_argument("--allow-missing", action="store_true",
                        help="score labelled rows without a prediction as empty instead of failing")
    parser.add_argument("--metrics", help="also write the scores as JSON to this path")
    parser.add_argument("--report", help="also write an HTML error-analysis page to this path")
    parser.add_argument("--images", help="image folder for the report's thumbnails")
    args = parser.parse_args(argv)
    if args.styles and args.predictions:
        raise InputError("--styles applies to --raw alone; --predictions is scored as it is")
    if args.images and not Path(args.images).is_dir():
        raise InputError(f"image folder not found: {args.images}")
    for out, what in ((args.metrics, "--metrics"), (args.report, "--report")):
        if out:
            check_writable(out, what)  # before the scoring, not after it
    result = evaluate(args.labels, args.predictions, args.raw, args.allow_missing, styles=args.styles)
    if result["rejected"]:
        line, value, why = result["rejected"][0]
        print(f"warning: {len(result['rejected'])} prediction(s) in {args.predictions} would be rejected "
              f"by the leaderboard's parser (first: line {line}, {value!r}: {why}); they are scored "
              f"as wrong answers here, and the leaderboard may refuse the whole file: run "
              f"postprocessing.py, then src/sanity.py", file=sys.stderr)
    print_tables(result)
    metrics = metrics_dict(result, args.labels, args.predictions, args.raw)
    if args.metrics:
        write_text(args.metrics, json.dumps(metrics, indent=2) + "\n")
        print(f"wrote {args.metrics}")
    if args.report:
        from amlc.report import write_report

        write_report(result["rows"], args.report, title=f"Error analysis: {Path(args.labels).name}",
                     metrics=metrics, images_dir=args.images)
        print(f"wrote {args.report}")
    print(f"F1 {metrics['f1']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(cli(main))
