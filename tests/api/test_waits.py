"""``?min_position=`` waits hold no thread of the request pool (issue #11.5): with 60 reads waiting for a
position that never comes (more than the pool's 40 threads), ``/healthz``, ``/v1/trust/root`` (a handler
that needs a pool thread) and an ordinary read are answered while every one of the 60 is still waiting.
Before the fix each wait held a pool thread in ``time.sleep``: the others queued until waits timed out
(after 5 s), so some wait had finished before they were answered. Ordering, not timing, is asserted."""

from __future__ import annotations

import asyncio

import httpx

from tests.api.conftest import Province

WAITS = 60
FAR = 10**12


def waiting(p: Province) -> int:
    return sum(
        len(watch.waiters)
        for waits in (p.services.view_waits, p.services.store_waits)
        for watch in list(waits._watches.values())
    )


def test_waiting_readers_do_not_starve_the_others(shared_province: Province) -> None:
    p = shared_province
    auth = {"Authorization": f"Bearer {p.auditor.key}"}

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=p.app, client=("203.0.113.5", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://nocert.test") as client:
            paths = ["/v1/departments", "/v1/checks"]  # one read from the event store, one from the views
            waits = [
                asyncio.create_task(client.get(paths[n % 2], params={"min_position": FAR}, headers=auth))
                for n in range(WAITS)
            ]
            while waiting(p) < WAITS:  # every one of them is waiting now (a wait loop, no timing assertion)
                assert not any(task.done() for task in waits), [task.result().status_code for task in waits if task.done()]
                await asyncio.sleep(0.01)
            others = await asyncio.gather(
                client.get("/healthz"),
                client.get("/v1/trust/root"),
                client.get("/v1/categories", headers=auth),
                *(client.get("/v1/departments", headers=auth) for _ in range(5)),
            )
            assert [response.status_code for response in others] == [200] * len(others)
            assert not any(task.done() for task in waits), "a wait ended before the other calls were answered"
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    asyncio.run(scenario())


def test_a_wait_ends_when_the_position_is_reached(shared_province: Province) -> None:
    p = shared_province
    auth = {"Authorization": f"Bearer {p.auditor.key}"}

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=p.app, client=("203.0.113.6", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://nocert.test") as client:
            target = p.position() + 1
            read = asyncio.create_task(client.get("/v1/checks", params={"min_position": target, "limit": 500}, headers=auth))
            while waiting(p) < 1:
                await asyncio.sleep(0.01)
            created = await client.post(
                "/v1/checks", json=p.check_body(), headers={"Authorization": f"Bearer {p.approver.key}"}
            )
            assert created.status_code == 201
            response = await read
            assert response.status_code == 200
            assert created.json()["id"] in [item["id"] for item in response.json()["items"]]

    asyncio.run(scenario())
