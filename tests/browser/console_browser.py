"""The operator console in a real Chromium (Debian's, driven by Playwright).

Run by tests/it/console_browser.rs, which starts the services, seeds the
deliveries and operators, and passes them in the environment:

  CONSOLE_URL, OPERATOR_NAME, OPERATOR_PASSWORD (one-time), VIEWER_NAME,
  VIEWER_PASSWORD (one-time), PAID_DELIVERY_ID, PAID_EMAIL, PARKED_ORDER,
  HELD_ORDER, SCREENSHOT_DIR (optional: where to save the README's pictures)

Exits non-zero on the first failed expectation, naming it.
"""

import os
import re
import sys

from playwright.sync_api import expect, sync_playwright

URL = os.environ["CONSOLE_URL"]
SHOTS = os.environ.get("SCREENSHOT_DIR")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def shot(page, name):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=False)


def watch(page, problems):
    """Collects what must never happen: a script from a payload running (a
    dialog), a Content-Security-Policy violation, a page error."""
    page.on("dialog", lambda d: (problems.append(f"dialog opened: {d.message}"), d.dismiss()))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    # A refused request's status (a 403 the test provokes) is logged as a
    # console error too; those are checked where they happen instead.
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}")
        if ("Content Security Policy" in m.text or "Refused to" in m.text)
        or (m.type == "error" and not m.text.startswith("Failed to load resource"))
        else None,
    )


def sign_in(page, name, one_time, chosen):
    page.goto(URL + "/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", one_time)
    page.click("button[type=submit]")
    # The one-time password only lets one choose a new one.
    expect(page).to_have_url(URL + "/password")
    page.fill("input[name=current]", one_time)
    page.fill("input[name=password]", chosen)
    page.fill("input[name=again]", chosen)
    page.click("button[type=submit]")
    expect(page).to_have_url(URL + "/")


def main():
    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        page = context.new_page()
        watch(page, problems)

        # No page without a session.
        page.goto(URL + "/deliveries")
        expect(page).to_have_url(URL + "/login")

        sign_in(page, os.environ["OPERATOR_NAME"], os.environ["OPERATOR_PASSWORD"], "operator-chosen-password")
        expect(page.locator("h1")).to_have_text("Overview")
        expect(page.locator("main")).to_contain_text("deliveries, over the newest")
        cookie = next(c for c in context.cookies() if c["name"].startswith("__Host-"))
        assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict", cookie
        shot(page, "overview")

        # Find a delivery by its svix-id; read its payload, attempts and grant.
        page.fill("header input[name=q]", os.environ["PAID_DELIVERY_ID"])
        page.click("header form.search button")
        expect(page.locator("h1")).to_contain_text(os.environ["PAID_DELIVERY_ID"])
        payload = page.locator("#payload")
        # The payload's <script> is text on the page, never a script.
        expect(payload).to_contain_text("<script>alert(1)</script>")
        expect(payload).not_to_contain_text(os.environ["PAID_EMAIL"])
        expect(page.locator("main")).to_contain_text("Processing attempts")
        expect(page.locator("main")).to_contain_text("purchase_grant")
        expect(page.locator("main")).to_contain_text("3300")
        shot(page, "delivery")
        # Reveal (htmx swaps the body in place; audited).
        page.click("text=Reveal (audited)")
        expect(payload).to_contain_text(os.environ["PAID_EMAIL"])
        expect(page.locator("#body")).to_contain_text("your look is in the audit trail")

        # Redrive a parked message.
        page.goto(URL + "/parked")
        page.click("table a >> nth=0")
        expect(page.locator("main")).to_contain_text(os.environ["PARKED_ORDER"])
        page.click("button:has-text('Redrive')")
        expect(page.locator("pre.done")).to_contain_text(re.compile(r"was parked; sent again -> granted"))

        # Release a held order.
        page.goto(URL + "/held")
        held = page.locator("section", has_text=os.environ["HELD_ORDER"])
        expect(held).to_contain_text("the package costs")
        shot(page, "held")
        held.locator("input[name=reason]").fill("rest paid by wire")
        held.locator("button[value=release]").click()
        expect(page.locator("pre.done")).to_contain_text("granted 3300 credits")

        # See the audit rows.
        page.goto(URL + "/audit")
        release_row = page.locator("tr", has_text="rest paid by wire")
        expect(release_row).to_contain_text("release")
        expect(release_row).to_contain_text(os.environ["OPERATOR_NAME"])
        expect(page.locator("table.audit")).to_contain_text("console reveal")
        shot(page, "audit")

        # A state change without its CSRF token is refused (same cookies).
        forged = context.request.post(URL + "/control", form={"paused": "true", "reason": "forged"})
        assert forged.status == 403 and "CSRF_MISMATCH" in forged.text(), (forged.status, forged.text())

        # A viewer's action is refused.
        viewer_context = browser.new_context()
        viewer = viewer_context.new_page()
        watch(viewer, problems)
        sign_in(viewer, os.environ["VIEWER_NAME"], os.environ["VIEWER_PASSWORD"], "viewer-chosen-password")
        viewer.goto(URL + "/control")
        viewer.fill("form[action='/control'] input[name=reason] >> nth=0", "viewer tries")
        viewer.click("button:has-text('Pause processing')")
        expect(viewer.locator("main")).to_contain_text("ROLE_FORBIDDEN")

        # Signing out ends the session.
        page.goto(URL + "/")
        page.click("button:has-text('Sign out')")
        expect(page).to_have_url(URL + "/login")
        page.goto(URL + "/audit")
        expect(page).to_have_url(URL + "/login")
        browser.close()
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)
    print("console browser test passed")


if __name__ == "__main__":
    main()
