from __future__ import annotations

import pytest

from lakehouse import InvalidNameError, TableNotFoundError
from lakehouse.names import parse_table_name


@pytest.mark.parametrize(
    "bad",
    [
        "users",
        "silver.",
        ".users",
        "silver..users",
        "silver.users.extra",
        "silver/users",
        "silver.us/ers",
        "silver.../etc",
        "../silver.users",
        "Silver.users",
        "silver.Users",
        "silver.user-s",
        "silver.1users",
        "platinum.users",
        "silver.users ",
        "",
    ],
)
def test_bad_names_are_refused(lh, bad):
    with pytest.raises(InvalidNameError) as err:
        lh.write(bad, [{"a": 1}])
    assert repr(bad) in str(err.value)
    with pytest.raises(InvalidNameError):
        lh.table(bad)
    assert not any(p.name == "_delta_log" for p in lh_files(lh))


def lh_files(lh):
    from pathlib import Path

    return list(Path(lh.root).rglob("*"))


def test_good_names_parse():
    name = parse_table_name("gold.daily_active_users_2")
    assert (name.layer, name.name, str(name)) == (
        "gold",
        "daily_active_users_2",
        "gold.daily_active_users_2",
    )


def test_unknown_table_names_closest(lh):
    lh.write("silver.users", [{"id": 1}])
    lh.write("silver.user_events", [{"id": 1}])
    with pytest.raises(TableNotFoundError) as err:
        lh.table("silver.usrs")
    assert "silver.usrs" in str(err.value)
    assert "silver.users" in err.value.suggestions
    with pytest.raises(TableNotFoundError) as err:
        lh.table("gold.users")
    assert "silver.users" in err.value.suggestions
