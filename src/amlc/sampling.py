"""Stratified, seeded train/validation sample of the training CSV (stage 1 of `python train/run.py`).

    python -m amlc.sampling --input train.csv --output sample.csv [--size N | --fraction F]
                            [--val-fraction F] [--seed S]

Steps, each deterministic for a given seed and input:
1. Rows that cannot be trained on are dropped and counted: an entity_value that amlc.units.normalize
   cannot turn into a valid prediction ("5 millilitre" of an item_weight, "3.0 horsepower"), an empty
   image_link, an unknown entity_name.
2. `size` rows (or `fraction` of the usable rows; `size` wins, neither: all) are drawn, stratified by
   entity_name, then group_id: each entity gets its share of the rows (within one row), and within an
   entity every group big enough to expect at least one row keeps its share (within one row); the
   entity's rarer groups are pooled and drawn as one stratum (scikit-learn's train_test_split).
3. The sample is split into train and validation by image link, not by row (a photo labelled for two
   entities is two rows): no link is in both splits. The split is stratified the same way, over links.
The per-entity counts of the input and of the sample are printed (stderr) before and after.

Output CSV (sample.csv), one row per sampled training row, in input order:
    index         the row's number in the input (0-based), unless the input had an index column
    image_link, group_id, entity_name, entity_value, and any other input column, unchanged
    target        the training target: normalize(entity_value, entity_name), never ""
    split         "train" or "val"
The seed is run.seed in a config (`sample` section: size, fraction, val_fraction).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from amlc.config import DEFAULTS
from amlc.constants import ENTITIES
from amlc.errors import ArgumentParser, InputError, cli
from amlc.units import normalize, normalize_ex

REQUIRED = ["image_link", "group_id", "entity_name", "entity_value"]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def sample(train_df: pd.DataFrame, *, size: int | None = None, fraction: float | None = None,
           val_fraction: float = DEFAULTS["sample"]["val_fraction"], seed: int = DEFAULTS["run"]["seed"],
           range_policy: str = "max", log: Callable[[str], None] | None = _stderr) -> pd.DataFrame:
    """The sample (see the module docstring). `log` gets the before/after tables (None: quiet)."""
    missing = [c for c in REQUIRED if c not in train_df.columns]
    if missing:
        raise InputError(f"training table lacks column(s) {', '.join(missing)}")
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1):
        raise InputError(f"sample size must be a positive whole number of rows, got {size!r}")
    if size is None and fraction is not None and not 0 < fraction <= 1:
        raise InputError(f"sample fraction must be in (0, 1], got {fraction!r}")
    if not 0 <= val_fraction < 1:
        raise InputError(f"val_fraction must be in [0, 1), got {val_fraction!r}")

    df = train_df.reset_index(drop=True).copy()
    if "index" not in df.columns:
        df.insert(0, "index", np.arange(len(df)))
    entity = df["entity_name"].astype(str)
    link = df["image_link"].fillna("").astype(str).str.strip()
    known = entity.isin(ENTITIES)
    cache: dict[tuple[str, str], str] = {}
    targets = []
    for value, ent, ok in zip(df["entity_value"], entity, known):
        key = ("" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value), ent)
        if key not in cache:
            cache[key] = normalize(key[0], ent, range_policy) if ok else ""
        targets.append(cache[key])
    df["target"] = targets
    why = pd.Series("", index=df.index)
    why[df["target"] == ""] = "label unusable"
    why[link == ""] = "no image_link"
    why[~known] = "unknown entity_name"
    usable = df[why == ""]

    n_usable = len(usable)
    if size is not None:
        n_pick = min(int(size), n_usable)
    elif fraction is not None:
        n_pick = int(round(fraction * n_usable))
    else:
        n_pick = n_usable
    if n_pick == 0:
        raise InputError(f"nothing to sample: {n_usable} usable rows of {len(df)}")
    groups = usable["group_id"].astype(str)
    picked = _pick(usable["entity_name"].astype(str), groups, n_pick, seed)
    out = usable[picked].copy()

    # Split by link: each distinct link (with its first row's entity and group) goes to one side.
    out_link = link[out.index]
    first = ~out_link.duplicated()
    n_links = int(first.sum())
    n_val = int(round(val_fraction * n_links))
    if val_fraction > 0 and n_links >= 2:
        n_val = min(max(n_val, 1), n_links - 1)
    else:
        n_val = 0
    val_mask = _pick(out["entity_name"][first].astype(str), out["group_id"][first].astype(str), n_val,
                     seed + 1)
    val_links = set(out_link[first][val_mask])
    out["split"] = np.where(out_link.isin(val_links), "val", "train")

    if log is not None:
        log(_report(df, why, out, n_pick, size, fraction, range_policy))
    cols = [c for c in out.columns if c not in ("target", "split")] + ["target", "split"]
    return out[cols].reset_index(drop=True)


def _pick(entity: pd.Series, group: pd.Series, n_pick: int, seed: int) -> np.ndarray:
    """A boolean mask choosing `n_pick` rows: each entity gets its share (largest remainder, so within
    one row of exact), drawn within the entity stratified by group as far as the counts allow."""
    n = len(entity)
    if n_pick >= n:
        return np.ones(n, dtype=bool)
    mask = np.zeros(n, dtype=bool)
    if n_pick <= 0:
        return mask
    ent = entity.to_numpy()
    grp = group.to_numpy()
    names, counts = np.unique(ent, return_counts=True)  # sorted: the allocation is deterministic
    exact = counts * n_pick / n
    alloc = np.floor(exact).astype(int)
    order = sorted(range(len(names)), key=lambda i: (-(exact[i] - alloc[i]), names[i]))
    for i in order[: n_pick - int(alloc.sum())]:
        alloc[i] += 1
    for name, k in zip(names, alloc):
        rows = np.flatnonzero(ent == name)
        mask[rows[_draw(grp[rows], int(k), seed)]] = True
    return mask


def _draw(group: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Positions of `k` of these rows, stratified by group: groups that can expect at least one row on
    both sides of the draw are strata, the rarer ones pooled into one; plain random if even that
    leaves more strata than rows to draw."""
    m = len(group)
    if k >= m:
        return np.arange(m)
    if k <= 0:
        return np.arange(0)
    from sklearn.model_selection import train_test_split

    small = min(k, m - k)
    s = pd.Series(group, dtype=object)
    s[s.map(s.value_counts()) * small < m] = "*"
    if (s == "*").sum() == 1:  # a pool of one row cannot be split: it joins the largest group
        s[s == "*"] = s[s != "*"].value_counts().idxmax()
    labels = s.to_numpy() if 1 < s.nunique() <= small else None
    chosen, _ = train_test_split(np.arange(m), train_size=k, random_state=seed, shuffle=True,
                                 stratify=labels)
    return np.sort(chosen)


def _report(df: pd.DataFrame, why: pd.Series, out: pd.DataFrame, n_pick: int, size, fraction,
            range_policy: str) -> str:
    ent_all = df["entity_name"].astype(str)
    usable = why == ""
    rows = []
    for e in sorted(set(ent_all), key=lambda e: -int((ent_all == e).sum())):
        m = ent_all == e
        rows.append((e, int(m.sum()), int((m & ~usable).sum()), int((m & usable).sum()),
                     int(((out["entity_name"] == e) & (out["split"] == "train")).sum()),
                     int(((out["entity_name"] == e) & (out["split"] == "val")).sum())))
    n_use = int(usable.sum())
    lines = [f"sample: {len(out)} of {n_use} usable rows ("
             + (f"size {size}" if size is not None else f"fraction {fraction}" if fraction is not None
                else "all rows") + "), stratified by entity_name and group_id",
             f"{'entity_name':<32}{'input':>9}{'dropped':>9}{'usable':>9}{'share':>8}"
             f"{'sample':>9}{'share':>8}{'train':>9}{'val':>7}"]
    for e, n_in, n_drop, n_ok, n_tr, n_va in rows:
        lines.append(f"{e:<32}{n_in:>9}{n_drop:>9}{n_ok:>9}{_pct(n_ok, n_use):>8}"
                     f"{n_tr + n_va:>9}{_pct(n_tr + n_va, len(out)):>8}{n_tr:>9}{n_va:>7}")
    n_tr = int((out["split"] == "train").sum())
    lines.append(f"{'total':<32}{len(df):>9}{len(df) - n_use:>9}{n_use:>9}{'':>8}{len(out):>9}{'':>8}"
                 f"{n_tr:>9}{len(out) - n_tr:>7}")
    reasons = Counter(why[~usable])
    if reasons.get("label unusable"):
        bad = df[why == "label unusable"]
        detail = Counter(normalize_ex(str(v), e, range_policy).reason
                         for v, e in zip(bad["entity_value"], bad["entity_name"]))
        reasons["label unusable"] = 0
        for r, k in detail.items():
            reasons[f"label unusable ({r})"] = k
    dropped = ", ".join(f"{r}: {k}" for r, k in reasons.most_common() if k)
    lines.append(f"dropped {len(df) - n_use} rows" + (f" -- {dropped}" if dropped else ""))
    links = out["image_link"].astype(str).str.strip()
    lines.append(f"groups: {df.loc[usable, 'group_id'].astype(str).nunique()} in the usable rows, "
                 f"{out['group_id'].astype(str).nunique()} in the sample; image links: "
                 f"{links[out['split'] == 'train'].nunique()} train, {links[out['split'] == 'val'].nunique()} val, "
                 "none in both")
    return "\n".join(lines)


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.1f}%" if n else "-"


# ------------------------------------------------------------------------------------------------ CLI

def build_parser() -> argparse.ArgumentParser:
    d = DEFAULTS["sample"]
    p = ArgumentParser(
        prog="python -m amlc.sampling",
        description="Draw a stratified (entity_name, group_id), seeded train/validation sample of a "
                    "training CSV. Rows whose label cannot become a valid prediction are dropped and "
                    "counted; no image link is in both splits. Writes the input's columns plus index, "
                    "target (the normalised label) and split (train/val).")
    p.add_argument("--input", required=True,
                   help="training CSV (image_link, group_id, entity_name, entity_value)")
    p.add_argument("--output", required=True, help="sample CSV to write (atomically)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--size", type=int, help=f"rows in the sample, train + val (default {d['size']})")
    g.add_argument("--fraction", type=float, help="share of the usable rows instead of --size (1: all)")
    p.add_argument("--val-fraction", type=float, default=d["val_fraction"],
                   help=f"share of the sample's image links held out for validation (default {d['val_fraction']})")
    p.add_argument("--seed", type=int, default=DEFAULTS["run"]["seed"],
                   help=f"random seed: same seed, same input -> same sample (default {DEFAULTS['run']['seed']})")
    p.add_argument("--quiet", action="store_true", help="do not print the per-entity tables")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from amlc.tables import read_csv, write_csv

    df = read_csv(args.input, required=REQUIRED, what="training CSV")
    size = args.size if args.size is not None or args.fraction is not None else DEFAULTS["sample"]["size"]
    out = sample(df, size=size, fraction=args.fraction, val_fraction=args.val_fraction, seed=args.seed,
                 log=None if args.quiet else _stderr)
    write_csv(out, args.output)
    if not args.quiet:
        _stderr(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(cli(main))
