"""How the bundled three-party credit split was made from UCI_Credit_Card (run as a module).

    python -m vfl.datasets.make_splits

A bank holds the label, the credit limit and the repayment status history; an insurer holds
demographics and payment amounts; a telco-like third party holds the bill amounts. Each party's
rows are shuffled differently (seeded), so PSI has real work to do.
"""
from __future__ import annotations

import numpy as np

from vfl.datasets import DATA_DIR, load

SPLITS = {
    "bank": ["LIMIT_BAL", "PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6", "default.payment.next.month"],
    "insurer": ["SEX", "EDUCATION", "MARRIAGE", "AGE", "PAY_AMT1", "PAY_AMT2", "PAY_AMT3", "PAY_AMT4",
                "PAY_AMT5", "PAY_AMT6"],
    "telco": ["BILL_AMT1", "BILL_AMT2", "BILL_AMT3", "BILL_AMT4", "BILL_AMT5", "BILL_AMT6"],
}


def main() -> None:
    full = load("UCI_Credit_Card").rename(columns={"default.payment.next.month": "default"})
    for seed, (party, columns) in enumerate(SPLITS.items()):
        cols = ["ID"] + [("default" if c == "default.payment.next.month" else c) for c in columns]
        part = full[cols].sample(frac=1.0, random_state=seed)
        part.to_csv(DATA_DIR / f"credit3_{party}.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
        print(party, part.shape)


if __name__ == "__main__":
    main()
