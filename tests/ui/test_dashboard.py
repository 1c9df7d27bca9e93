"""The web dashboard in headless Chromium (see conftest.py): logging in with a link, the key
list and its search, a key's page (and no key bytes in it), the audit trail with a filter and
its verification, approving a held Destroy as an approver (then the requester's Poll runs it),
the explain form; and what is refused: no session (401), a tampered link or cookie (401), an
identity that is neither administrator, auditor nor approver (403)."""

from __future__ import annotations

import base64
import urllib.parse
from datetime import UTC, datetime
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from kmip_client import OperationPending
from kmip_server.admin.dashboard.auth import COOKIE
from kmip_server.config import load_config
from kmip_server.storage.repository import Repository

from .conftest import ROOT, SCREENSHOTS, DashboardServer


def _shot(driver: Any, name: str) -> None:
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def _login(driver: Any, server: DashboardServer, name: str) -> None:
    driver.delete_all_cookies()
    driver.get(server.base + "/dashboard/static/dashboard.css")  # on the origin, to clear its cookies
    driver.delete_all_cookies()
    driver.get(server.link(name))
    WebDriverWait(driver, 30).until(expected_conditions.presence_of_element_located((By.ID, "viewer-name")))
    assert driver.find_element(By.ID, "viewer-name").text == name


def _wait_for(driver: Any, element_id: str) -> Any:
    return WebDriverWait(driver, 30).until(expected_conditions.presence_of_element_located((By.ID, element_id)))


def test_an_unauthenticated_visit_gets_401_with_how_to_log_in(server: DashboardServer, browser: Any) -> None:
    browser.delete_all_cookies()
    browser.get(server.base + "/dashboard")
    _wait_for(browser, "status-401")
    assert "strongroom dashboard-link" in browser.page_source
    _shot(browser, "01-unauthenticated-401")
    for path in ("/dashboard", "/dashboard/keys", "/dashboard/audit", "/dashboard/approvals"):
        status, headers, body = server.get(path)
        assert status == 401, (path, body[:200])
        assert headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_client_certificates_authenticate_and_the_policy_decides(server: DashboardServer) -> None:
    assert server.get("/dashboard", "admin")[0] == 200
    assert server.get("/dashboard/keys", "audrey")[0] == 200  # an auditor reads everything
    assert server.get("/dashboard", "bob")[0] == 403  # no role: not for bob
    assert server.get("/dashboard", "carol")[0] == 403  # an approver only sees the queue
    assert server.get("/dashboard/approvals", "carol")[0] == 200


def test_login_by_link_sets_a_strict_session_cookie(server: DashboardServer, browser: Any) -> None:
    link = server.link("admin")
    status, headers, _ = server.get(urllib.parse.urlsplit(link)._replace(scheme="", netloc="").geturl())
    assert status == 303 and headers["location"] == "/dashboard"
    cookie = headers["set-cookie"]
    for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/dashboard"):
        assert flag in cookie
    _login(browser, server, "admin")
    assert urllib.parse.urlsplit(browser.current_url).path == "/dashboard"
    assert browser.find_element(By.ID, "total-objects").text.isdigit()
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart rect")  # the per-day charts
    (session,) = [c for c in browser.get_cookies() if c["name"] == COOKIE]
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"
    _shot(browser, "02-overview")


def test_a_tampered_link_or_cookie_is_refused(server: DashboardServer, browser: Any) -> None:
    link = server.link("admin")
    path = urllib.parse.urlsplit(link)._replace(scheme="", netloc="").geturl()
    token = path.split("t=", 1)[1]
    payload, _, mac = token.rpartition(".")
    fields = payload.split(".")
    as_bob = ".".join([fields[0], base64.urlsafe_b64encode(b"bob").rstrip(b"=").decode(), fields[2]]) + "." + mac
    longer = ".".join([fields[0], fields[1], str(int(fields[2]) + 60)]) + "." + mac
    flipped = payload + "." + ("A" if mac[0] != "A" else "B") + mac[1:]
    for bad in (as_bob, longer, flipped, "garbage", token + "x"):
        status, headers, body = server.get("/dashboard/login?t=" + urllib.parse.quote(bad))
        assert status == 401 and "set-cookie" not in headers, bad
        assert b"not valid" in body
    # A cookie: a link is not a session, and an edited session is not one either.
    status, headers, _ = server.get(path)
    session = headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]
    assert server.get("/dashboard", headers={"Cookie": f"{COOKIE}={session}"})[0] == 200
    for bad in (token, session[:-2] + ("AA" if not session.endswith("AA") else "BB"), session.replace("v1.", "v2.", 1)):
        assert server.get("/dashboard", headers={"Cookie": f"{COOKIE}={bad}"})[0] == 401, bad
    browser.delete_all_cookies()
    browser.get(server.base + "/dashboard/login?t=" + urllib.parse.quote(flipped))
    _wait_for(browser, "status-401")
    assert "not valid or has expired" in browser.page_source
    _shot(browser, "03-tampered-link-401")


def test_a_link_for_someone_without_a_dashboard_role_is_403(server: DashboardServer, browser: Any) -> None:
    browser.delete_all_cookies()
    browser.get(server.link("bob"))
    _wait_for(browser, "status-403")
    assert not [c for c in browser.get_cookies() if c["name"] == COOKIE]
    _shot(browser, "04-forbidden-403")


def test_the_key_list_shows_the_keys_and_searches(server: DashboardServer, browser: Any) -> None:
    _login(browser, server, "audrey")  # an auditor
    browser.get(server.base + "/dashboard/keys")
    table = _wait_for(browser, "keys")
    text = table.text
    for name in ("payments-key-0", "payments-key-1", "payments-key-2", "backup-key"):
        assert name in text
    assert "AES" in text and "Pre-Active" in text and "alice" in text
    _shot(browser, "05-keys")
    box = browser.find_element(By.NAME, "q")
    box.clear()
    box.send_keys("PAYMENTS")
    browser.find_element(By.CSS_SELECTOR, "#key-search button").click()
    WebDriverWait(browser, 30).until(lambda d: "q=PAYMENTS" in d.current_url)
    names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#keys a.key-link")]
    assert sorted(names) == ["payments-key-0", "payments-key-1", "payments-key-2"]
    Select(browser.find_element(By.NAME, "state")).select_by_visible_text("Active")
    browser.find_element(By.CSS_SELECTOR, "#key-search button").click()
    WebDriverWait(browser, 30).until(lambda d: "state=Active" in d.current_url)
    assert browser.find_elements(By.CSS_SELECTOR, "#keys a.key-link") == []
    _shot(browser, "06-keys-search")


def test_a_key_page_shows_attributes_timeline_and_audit_but_no_key_bytes(server: DashboardServer, browser: Any) -> None:
    with server.client("alice") as kmip:
        uid = kmip.create("AES", 256, name="key-page-key")
        kmip.activate(uid)
        value = kmip.get(uid).value
    repository = Repository(load_config(server.process.data_dir).storage.url)
    try:
        with repository.read() as session:
            record = session.get(uid, attributes=False)
            assert record is not None and record.wrapped_value
            wrapped = record.wrapped_value
    finally:
        repository.dispose()
    _login(browser, server, "admin")
    browser.get(server.base + "/dashboard/keys?q=key-page-key")
    _wait_for(browser, "keys").find_element(By.CSS_SELECTOR, "a.key-link").click()
    attributes = _wait_for(browser, "attributes").text
    assert "Cryptographic Algorithm AES" in attributes
    assert "Cryptographic Length 256" in attributes
    assert "key-page-key" in attributes and "Active" in browser.page_source
    timeline = browser.find_element(By.ID, "timeline").text
    assert "Initial Date" in timeline and "Activation Date" in timeline
    records = browser.find_element(By.CSS_SELECTOR, "table.records").text
    assert "Create" in records and "Activate" in records and "Get" in records
    html = browser.page_source
    for secret in (value, wrapped):
        for form in (
            secret.hex(),
            secret.hex().upper(),
            base64.b64encode(secret).decode(),
            base64.urlsafe_b64encode(secret).decode().rstrip("="),
        ):
            assert form not in html
        assert secret.decode("latin-1") not in html
    _shot(browser, "07-key")


def test_the_audit_trail_filters_and_verifies(server: DashboardServer, browser: Any) -> None:
    _login(browser, server, "audrey")
    browser.get(server.base + "/dashboard/audit")
    _wait_for(browser, "audit-filters")
    browser.find_element(By.NAME, "identity").send_keys("alice")
    browser.find_element(By.NAME, "operation").send_keys("Create")
    browser.find_element(By.CSS_SELECTOR, "#audit-filters button[type=submit]:not([name])").click()
    WebDriverWait(browser, 30).until(lambda d: "operation=Create" in d.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "table.records tr.ok, table.records tr.failed")
    assert len(rows) >= 4
    for row in rows:
        cells = row.find_elements(By.TAG_NAME, "td")
        assert cells[2].text.splitlines()[0] == "alice" and cells[3].text == "Create"
    _shot(browser, "08-audit-filtered")
    browser.find_element(By.ID, "verify").click()
    report = _wait_for(browser, "verify-report")
    assert "audit trail intact" in report.text
    _shot(browser, "09-audit-verified")


def test_an_approver_approves_a_held_destroy_and_poll_runs_it(server: DashboardServer, browser: Any) -> None:
    with server.client("alice") as kmip:
        uid = kmip.create("AES", 256, name="root-key", attributes=ROOT)
        with kmip.asynchronous(), pytest.raises(OperationPending) as held:
            kmip.destroy(uid)
        pending = held.value
        request_id = pending.correlation_value.hex()
        with pytest.raises(OperationPending):
            kmip.poll(pending)

        _login(browser, server, "carol")  # an approver: sent to the queue
        assert urllib.parse.urlsplit(browser.current_url).path == "/dashboard/approvals"
        row = _wait_for(browser, f"request-{request_id}")
        assert "Destroy" in row.text and "alice" in row.text and "pending" in row.text
        _shot(browser, "10-approvals-pending")
        row.find_element(By.CSS_SELECTOR, "button.approve").click()
        message = _wait_for(browser, "message")
        assert f"approved request {request_id}" in message.text
        _shot(browser, "11-approvals-approved")

        assert kmip.poll(pending) == uid  # the Destroy ran, in the Poll
        assert kmip.get_attributes(uid, ["State"])["State"][0].name == "DESTROYED"

    # The vote is in the audit trail, as carol.
    _login(browser, server, "admin")
    browser.get(server.base + "/dashboard/audit?identity=carol&operation=Approve")
    records = _wait_for(browser, "record-count")
    assert records.text.startswith("1 record,")


def test_a_vote_needs_the_forms_csrf_token(server: DashboardServer) -> None:
    import http.client
    import ssl

    link = server.link("carol")
    status, headers, _ = server.get(urllib.parse.urlsplit(link)._replace(scheme="", netloc="").geturl())
    cookie = headers["set-cookie"].split(";", 1)[0]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(cafile=str(server.identities["admin"].ca))
    conn = http.client.HTTPSConnection("127.0.0.1", server.admin_port, timeout=30, context=context)
    try:
        body = urllib.parse.urlencode({"action": "approve", "id": "00" * 16, "csrf": "forged"})
        conn.request(
            "POST",
            "/dashboard/approvals",
            body,
            {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
        )
        response = conn.getresponse()
        assert response.status == 403 and b"CSRF" in response.read()
    finally:
        conn.close()


def test_the_explain_form(server: DashboardServer, browser: Any) -> None:
    _login(browser, server, "admin")
    browser.get(server.base + "/dashboard/explain")
    _wait_for(browser, "explain-form")
    browser.find_element(By.NAME, "identity").send_keys("bob")
    Select(browser.find_element(By.NAME, "operation")).select_by_visible_text("Create")
    browser.find_element(By.CSS_SELECTOR, "#explain-form button").click()
    verdict = _wait_for(browser, "verdict")
    assert verdict.text == "ALLOW"
    assert "identity 'bob'" in browser.find_element(By.ID, "explanation").text
    _shot(browser, "12-explain")


def test_the_key_list_shows_the_next_rotation_and_an_unknown_key_is_404(server: DashboardServer, browser: Any) -> None:
    week = 7 * 86400
    with server.client("alice") as kmip:
        uid = kmip.create(
            "AES", 256, name="rotating-key", attributes={"Rotate Automatic": True, "Rotate Interval": week}
        )
        initial = kmip.get_attributes(uid, ["Initial Date"])["Initial Date"][0]
    _login(browser, server, "admin")
    browser.get(server.base + "/dashboard/keys?q=rotating-key")
    (row,) = _wait_for(browser, "keys").find_elements(By.CSS_SELECTOR, "tr:has(a.key-link)")
    due = datetime.fromtimestamp(initial.timestamp() + week, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert row.find_elements(By.TAG_NAME, "td")[-1].text == due
    browser.get(server.base + "/dashboard/key?uid=no-such-object")
    _wait_for(browser, "status-404")
    assert "no object 'no-such-object'" in browser.page_source
