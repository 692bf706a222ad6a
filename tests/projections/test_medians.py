"""The incremental medians (`projections.medians`) against a brute-force median of every scope, on both
stores: random batches (single answers as the follower writes them, and up to hundreds as a rebuild
does), ties, even and odd counts, and every region prefix."""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterator

import pytest

from api.bootstrap import _open_database
from api.settings import Settings, parse_database_url
from domain.identifiers import region_prefix
from domain.timefmt import utcnow
from projections import coverage, medians, schema
from store.database import Database

REGIONS = ["350102", "350104", "350100", "350203", "350200", "350000", "110101", ""]
CATEGORIES = ["household", "marriage", "estate"]


@pytest.fixture
def database(durable_database_url: str) -> Iterator[Database]:
    location = parse_database_url(durable_database_url)
    db = _open_database(location, Settings(database_url=durable_database_url, db_pool_size=2))
    schema.create_schema(db)
    yield db
    db.close()


def brute_force(answers: list[medians.Answer], category: str, prefix: str) -> float | None:
    values = sorted(
        seconds
        for cat, region, seconds, _ in answers
        if (category == "" or cat == category) and (prefix == "" or (region != "" and region.startswith(prefix)))
    )
    return float(statistics.median(values)) if values else None


def every_prefix() -> list[str]:
    return ["", *sorted({region_prefix(code) for code in REGIONS if code} | {code[:4] for code in REGIONS if code})]


@pytest.mark.parametrize("largest_batch", [1, 7, 400])
def test_medians_equal_a_brute_force_median_of_every_scope(database: Database, largest_batch: int) -> None:
    rnd = random.Random(largest_batch)
    answers: list[medians.Answer] = []
    position = 0
    while len(answers) < 600:
        batch = []
        for _ in range(rnd.randint(1, largest_batch)):
            position += rnd.randint(1, 3)
            # few distinct values, so ties are common; sometimes a value far out on either side
            seconds = rnd.choice([rnd.randint(0, 20) * 0.5, rnd.uniform(0, 1e6), 1e-6 * rnd.randint(0, 3)])
            batch.append((rnd.choice(CATEGORIES), rnd.choice(REGIONS), seconds, position))
        with database.transaction() as cursor:
            medians.add(cursor, batch)
        answers += batch
        if rnd.random() < 0.2 or len(answers) >= 600:
            with database.reading() as cursor:
                for prefix in every_prefix():
                    got = medians.read(cursor, prefix)
                    for category in ["", *CATEGORIES]:
                        assert got.get(category) == brute_force(answers, category, prefix), (category, prefix, len(answers))


def test_a_category_reads_its_own_and_the_overall_median(database: Database) -> None:
    with database.transaction() as cursor:
        medians.add(cursor, [("household", "350102", 10.0, 1), ("marriage", "350102", 30.0, 2), ("marriage", "350203", 50.0, 3)])
    with database.reading() as cursor:
        assert medians.read(cursor, "", "marriage") == {"": 30.0, "marriage": 40.0}
        assert medians.read(cursor, "3501") == {"": 20.0, "household": 10.0, "marriage": 30.0}
        assert medians.read(cursor, "350203") == {"": 50.0, "marriage": 50.0}
        assert medians.read(cursor, "11") == {}


def test_an_answer_counted_twice_is_refused(database: Database) -> None:
    """The projector adds each answering event once; adding the same one again must fail, not skew."""
    with database.transaction() as cursor:
        medians.add(cursor, [("household", "350102", 10.0, 1)])
    with pytest.raises(Exception):
        with database.transaction() as cursor:
            medians.add(cursor, [("household", "350102", 10.0, 1)])
    with database.reading() as cursor:
        assert medians.read(cursor, "") == {"": 10.0, "household": 10.0}


def test_coverage_reads_the_kept_medians_not_every_check(database: Database) -> None:
    """The coverage read takes medians from ``view_medians``: what it holds is what coverage says."""
    with database.transaction() as cursor:
        cursor.execute("INSERT INTO view_categories (code, name, status, modes) VALUES ('household', '户籍', 'active', '[]')")
        medians.add(cursor, [("household", "350102", 4.0, 1), ("household", "350102", 8.0, 2)])
    with database.reading() as cursor:
        document = coverage.read_coverage(cursor, utcnow(), 0, region="350102")
    assert document["totals"]["median_answer_seconds"] == 6.0
    assert [row["median_answer_seconds"] for row in document["categories"] if row["code"] == "household"] == [6.0]


def test_views_of_an_older_layout_are_dropped_and_built_again(database: Database) -> None:
    with database.transaction() as cursor:
        cursor.execute("INSERT INTO view_departments (id, region) VALUES ('gulou', '350102')")
        cursor.execute("UPDATE view_tracking SET position = 5")
        cursor.execute("DELETE FROM view_schema")  # as a store from before the layout had a version
        cursor.execute("DROP TABLE view_medians")
    schema.create_schema(database)
    with database.reading() as cursor:
        assert cursor.execute("SELECT COUNT(*) FROM view_departments").fetchone()[0] == 0
        assert {p for (p,) in cursor.execute("SELECT position FROM view_tracking").fetchall()} == {0}
        assert cursor.execute("SELECT version FROM view_schema").fetchone()[0] == schema.VERSION
        assert cursor.execute("SELECT COUNT(*) FROM view_medians").fetchone()[0] == 0
