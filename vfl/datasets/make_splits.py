"""How the bundled splits were made (run as a module).

    python -m vfl.datasets.make_splits

credit3: from UCI_Credit_Card, a bank holds the label, the credit limit and the repayment status
history; an insurer holds demographics and payment amounts; a telco-like third party holds the
bill amounts. wine: scikit-learn's copy of the UCI wine set (178 rows, 3 classes), a small
multiclass vertical split (the label party holds 6 of the 13 measurements). Each party's rows
are shuffled differently (seeded), so PSI has real work to do.
"""
from __future__ import annotations

from vfl.datasets import DATA_DIR, load

SPLITS = {
    "bank": ["LIMIT_BAL", "PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6", "default.payment.next.month"],
    "insurer": ["SEX", "EDUCATION", "MARRIAGE", "AGE", "PAY_AMT1", "PAY_AMT2", "PAY_AMT3", "PAY_AMT4",
                "PAY_AMT5", "PAY_AMT6"],
    "telco": ["BILL_AMT1", "BILL_AMT2", "BILL_AMT3", "BILL_AMT4", "BILL_AMT5", "BILL_AMT6"],
}


WINE_GUEST = 6          # the first six measurements stay with the label party


def wine() -> None:
    from sklearn.datasets import load_wine
    data = load_wine(as_frame=True)
    frame = data.frame.rename(columns={"target": "y"})
    frame.columns = [c.replace("/", "_") for c in frame.columns]
    frame.insert(0, "id", [f"w{i:03d}" for i in range(len(frame))])
    features = [c for c in frame.columns if c not in ("id", "y")]
    parts = {"guest": ["id", "y"] + features[:WINE_GUEST], "host": ["id"] + features[WINE_GUEST:]}
    for seed, (side, cols) in enumerate(parts.items(), start=10):
        part = frame[cols].sample(frac=1.0, random_state=seed)
        part.to_csv(DATA_DIR / f"wine_hetero_{side}.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
        print("wine", side, part.shape)


def main() -> None:
    wine()
    full = load("UCI_Credit_Card").rename(columns={"default.payment.next.month": "default"})
    for seed, (party, columns) in enumerate(SPLITS.items()):
        cols = ["ID"] + [("default" if c == "default.payment.next.month" else c) for c in columns]
        part = full[cols].sample(frac=1.0, random_state=seed)
        part.to_csv(DATA_DIR / f"credit3_{party}.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
        print(party, part.shape)


if __name__ == "__main__":
    main()
