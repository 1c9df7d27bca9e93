"""The dashboard in a real browser: a real server (2 workers, SQLite, SoftHSM2) with
``--admin-port``, an access policy with administrators, an auditor, approvers and an approval
rule, a few keys made with the client library, and Debian's headless Chromium driven by
Selenium. Chromium cannot present a client certificate headlessly, so the browser logs in with
``strongroom dashboard-link`` links; it ignores certificate errors (the dev CA is not in its
store), which is acceptable for loopback in a test only.

Screenshots of each page go to tests/ui/screenshots/ (git-ignored) for people to look at.
Skipped when Chromium or chromedriver is missing (``scripts/setup`` installs them as root).
"""

from __future__ import annotations

import http.client
import re
import shutil
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kmip_client import Client
from tests.support.server_process import (
    LOOPBACK,
    ServerProcess,
    TlsFiles,
    client_ssl_context,
    free_port,
    issue_client_cert,
    run_cli,
    running_server,
    serve_policy,
    strongroom_init,
)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).parent / "screenshots"
PEOPLE = ("alice", "bob", "carol", "dave", "audrey")
ROOT = {"Object Group": "root-keys"}

POLICY = """
[settings]
administrators = ["admin"]

[roles.approver]
description = "may approve or deny held requests"
approver = true

[roles.auditor]
description = "reads the dashboard"

[[identities]]
match = { CN = "carol" }
roles = ["approver"]

[[identities]]
match = { CN = "dave" }
roles = ["approver"]

[[identities]]
match = { CN = "audrey" }
roles = ["auditor"]

[[approvals]]
name = "destroying a root key"
operations = ["Destroy"]
scope = { object_group = "root-keys" }
required = 1
approvers = ["carol", "dave"]
expires_after = 3600
"""


@dataclass(frozen=True)
class DashboardServer:
    process: ServerProcess
    admin_port: int
    identities: dict[str, TlsFiles]

    @property
    def base(self) -> str:
        return f"https://{LOOPBACK}:{self.admin_port}"

    def client(self, who: str = "alice") -> Client:
        files = self.identities[who]
        return Client(f"{LOOPBACK}:{self.process.port}", ca=files.ca, cert=files.cert, key=files.key)

    def link(self, name: str, minutes: int = 15) -> str:
        result = run_cli(
            [
                "dashboard-link",
                "--data-dir",
                str(self.process.data_dir),
                "--as",
                name,
                "--minutes",
                str(minutes),
                "--port",
                str(self.admin_port),
            ]
        )
        link = result.stdout.strip()
        assert re.fullmatch(rf"https://127\.0\.0\.1:{self.admin_port}/dashboard/login\?t=[\w.\-]+", link), link
        return link

    def get(
        self, path: str, who: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """A plain HTTPS GET (statuses and headers the browser does not show)."""
        files = self.identities["admin"]
        if who is None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.load_verify_locations(cafile=str(files.ca))
        else:
            who_files = self.identities[who]
            context = client_ssl_context(who_files.ca, who_files.cert, who_files.key)
        conn = http.client.HTTPSConnection(LOOPBACK, self.admin_port, timeout=30, context=context)
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardServer]:
    data_dir = tmp_path_factory.mktemp("dashboard") / "data"
    admin = strongroom_init(data_dir)
    identities = {name: issue_client_cert(data_dir, name, data_dir.parent / name) for name in PEOPLE}
    serve_policy(data_dir, POLICY)
    admin_port = free_port()
    with running_server(data_dir, free_port(), workers=2, extra_args=["--admin-port", str(admin_port)]) as process:
        dashboard = DashboardServer(process, admin_port, {"admin": admin, **identities})
        with dashboard.client("alice") as kmip:
            for i in range(3):
                kmip.create("AES", 256, name=f"payments-key-{i}")
            kmip.create("AES", 128, name="backup-key")
        yield dashboard


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("Chromium and chromedriver are not installed (scripts/setup installs them as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--ignore-certificate-errors",  # the dev CA; loopback, tests only
        "--window-size=1400,1000",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    SCREENSHOTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
