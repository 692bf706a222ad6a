"""The views as the composition root builds them (api.bootstrap.build): real seals, the ledger key of
the key directory, checkpoints that verify against the platform root."""

from __future__ import annotations

from api.bootstrap import build
from api.settings import Settings
from signing.checkpoints import verify_checkpoint
from tests.domain.world import APPLICANT_ID, APPROVER, GULOU_POLICE, build_province, raise_check
from tests.projections import recount


def test_built_services_keep_every_view(durable_database_url: str, tmp_path) -> None:
    services = build(Settings(database_url=durable_database_url, key_dir=tmp_path / "keys", checkpoint_every=5))
    try:
        app, views = services.platform, services.views
        views.start()
        build_province(app)
        check = raise_check(app)[0]
        replied, position = app.reply(check.id, GULOU_POLICE, "confirmed", {"household": "鼓楼"}, 90)
        assert replied.proof is not None and replied.proof.jws.count(".") == 2
        views.nudge()
        assert views.wait_for(position, 10)

        items, _ = views.list_checks(approver=APPROVER)
        assert [item["id"] for item in items] == [str(check.id)]
        assert items[0]["proof"]["jws"] is None
        assert APPLICANT_ID not in str(items)
        assert views.coverage()["totals"]["replied_confirmed"] == 1

        _, root = services.keystore.root()
        latest = views.latest_checkpoint()
        assert latest is not None and latest["tree_size"] % 5 == 0
        payload = verify_checkpoint(latest["jws"], root)
        hashes = [recount.leaf_hash(n) for n in recount.notifications(services.log)]
        assert payload["root_hash"] == recount.merkle_root(hashes[: latest["tree_size"]]).hex()
        assert views.lag() == 0 and views.ledger_size() == len(hashes)
    finally:
        services.close()
