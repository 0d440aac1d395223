"""Through the server: a notebook's kernel has the network only if its owner is in one of
``KernelPool.network_groups`` (here a server group), tested against real listeners."""

from __future__ import annotations

import json

from kernels.pool import KernelPool
from tests.conftest import ServerFactory
from tests.kernels.listeners import listen_in_namespace, listen_on_host, probe_code
from tests.server.test_kernels import TIMEOUT, finished, notebook, run, text_of
from tests.yclient import YClient


async def test_only_owners_in_a_network_group_get_kernels_with_network(
    make_server: ServerFactory,
) -> None:
    pool = KernelPool(pool_size=0, max_spares=0, check_interval=0.1, network_groups={"online"})
    server = await make_server(kernel_pool=pool)
    users = server.services.users
    users.get_or_create("alice")
    users.get_or_create("bob")
    users.create_group("online")
    users.add_member("online", "alice")
    async with listen_on_host() as host:
        with listen_in_namespace() as other:
            code = probe_code(host, other)
            seen = {}
            for name in ("alice", "bob"):
                notebook_id = await server.create_notebook(
                    f"{name}/net.ipynb", notebook(("p", code)), editors=()
                )
                async with YClient(server.ws_url(notebook_id), server.token(name)) as client:
                    assert (await run(server, notebook_id, ["p"], name)).code == 202
                    await client.wait_for(lambda: finished(client, "p"), timeout=TIMEOUT)
                    seen[name] = json.loads(text_of(client, "p"))
                status = await server.api("GET", f"/api/notebooks/{notebook_id}/kernel", user=name)
                assert json.loads(status.body)["kernel"]["network"] is (name == "alice")
    assert seen == {"alice": [host.token, other.token], "bob": ["ECONNREFUSED", "ENETUNREACH"]}
