"""Id normalization and the DataErrors that name party and column."""
import numpy as np
import pandas as pd
import pytest

from vfl.errors import DataError
from vfl.psi.ids import encode_ids, normalize_ids


def norm(values, **kw):
    return normalize_ids(pd.DataFrame({"id": values, **kw}), "id", "bank")


def test_integers_floats_and_strings_meet():
    assert norm([42, 7, -3]) == ["42", "7", "-3"]
    assert norm([42.0, 7.0, -3.0]) == ["42", "7", "-3"]
    assert norm(pd.array([42, 7, -3], dtype="Int64")) == ["42", "7", "-3"]
    assert norm([" 42", "7 ", "\t-3\n"]) == ["42", "7", "-3"]
    assert norm(np.array([42, 7, 3], dtype=np.uint16)) == ["42", "7", "3"]
    assert norm(np.array([42, "7", 3.0], dtype=object)) == ["42", "7", "3"]


def test_strings_keep_case_and_leading_zeros_and_are_nfc():
    assert norm(["A7", "a7", "007", "7"]) == ["A7", "a7", "007", "7"]
    composed, decomposed = "Zo\u00eb", "Zoe\u0308"
    assert norm([decomposed]) == [composed]
    assert encode_ids(norm(["  客户-1 "])) == ["客户-1".encode()]


@pytest.mark.parametrize("values,match", [
    ([1, 2, 1], r"2 rows share an id .*rows 0 and 2"),
    ([42, "42", " 42 "], "3 rows share an id"),
    (["Zo\u00eb", "Zoe\u0308 "], "2 rows share an id"),
    ([1.5, 2.0], "non-integral"),
    ([np.inf, 2.0], "non-integral"),
    ([2.0**60, 1.0], "out-of-range"),
    ([True, False], "boolean"),
    (np.array(["a", True], dtype=object), "boolean id at row 1"),
    (np.array(["a", 1.5], dtype=object), "float id at row 1"),
    (np.array(["a", b"b"], dtype=object), "type bytes at row 1"),
    (["a", "   "], "empty id at row 1"),
    (["a", None], "1 missing ids .*row 1"),
    ([1.0, np.nan], "1 missing ids"),
])
def test_bad_ids_name_party_and_column(values, match):
    with pytest.raises(DataError, match=match) as info:
        norm(values)
    assert "party 'bank', id column 'id'" in str(info.value)


def test_missing_column_empty_table_and_wrong_type():
    with pytest.raises(DataError, match=r"party 'shop', id column 'cid': no such column \(columns: 'id'"):
        normalize_ids(pd.DataFrame({"id": [1]}), "cid", "shop")
    with pytest.raises(DataError, match="'shop', id column 'id': the table is empty"):
        normalize_ids(pd.DataFrame({"id": []}), "id", "shop")
    with pytest.raises(DataError, match="expected a pandas DataFrame, got list"):
        normalize_ids([1, 2], "id", "shop")
    twice = pd.DataFrame([[1, 2]], columns=["id", "id"])
    with pytest.raises(DataError, match="more than once"):
        normalize_ids(twice, "id", "shop")


def test_error_messages_never_show_id_values():
    with pytest.raises(DataError) as info:
        norm(["secret-customer-17", "secret-customer-17"])
    assert "secret" not in str(info.value)
