"""The SQLite → PostgreSQL translation of the store's statements (core/store/postgres)."""

from core.store.postgres.dialect import to_postgres


def test_order_by_keys_get_sqlite_null_placement_up_to_limit():
    query = "SELECT a FROM t ORDER BY heat DESC, coalesce(b, 'x, y') LIMIT ? OFFSET ?"
    assert to_postgres(query) == (
        "SELECT a FROM t ORDER BY heat DESC NULLS LAST, coalesce(b, 'x, y') NULLS FIRST"
        " LIMIT $1 OFFSET $2"
    )


def test_an_order_by_inside_a_subquery_ends_at_its_parenthesis():
    query = "SELECT * FROM (SELECT a FROM t ORDER BY a) AS s WHERE s.a = ?2 ORDER BY a DESC"
    assert to_postgres(query) == (
        "SELECT * FROM (SELECT a FROM t ORDER BY a NULLS FIRST) AS s WHERE s.a = $2"
        " ORDER BY a DESC NULLS LAST"
    )


def test_placeholders_and_keywords_inside_string_literals_are_left_alone():
    query = "SELECT 'LIMIT ?' AS note FROM t ORDER BY note, ')' LIMIT ?"
    assert to_postgres(query) == (
        "SELECT 'LIMIT ?' AS note FROM t ORDER BY note NULLS FIRST, ')' NULLS FIRST LIMIT $1"
    )
