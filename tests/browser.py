"""Headless Chromium for browser tests: install it if missing, open a Playwright page.

Uses Debian's ``chromium`` package (installed with apt-get when absent; needs root) driven by the
Python ``playwright`` package. ``playwright install`` is never used: it downloads a browser build
from the network, which these machines cannot reach.

    from browser import open_page

    errors = []
    with open_page(offline=True, errors=errors) as page:
        page.goto(path.as_uri())
        ...
    assert not errors
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Schemes a page may load while "offline": everything it needs must come from these.
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
_INSTALL_LOCK = Path("/tmp/embrm-chromium-install.lock")


def ensure_chromium() -> Path:
    """Path of the Chromium binary, installing Debian's package first if it is missing."""
    if CHROMIUM.exists():
        return CHROMIUM
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise RuntimeError(
            f"{CHROMIUM} not found; install it with `apt-get install -y chromium` (as root)"
        )
    # Several test processes may get here at once; one installs, the others wait for it.
    with open(_INSTALL_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not CHROMIUM.exists():
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            wait = ["-o", "DPkg::Lock::Timeout=600"]  # another apt run may hold the dpkg lock
            install = ["apt-get", *wait, "install", "-y", "--no-install-recommends", "chromium"]
            if subprocess.run(install, env=env, capture_output=True).returncode != 0:
                # Fresh images ship without package lists; fetch them and try once more.
                subprocess.run(["apt-get", *wait, "update"], env=env, capture_output=True)
                result = subprocess.run(install, env=env, capture_output=True, text=True)
                if result.returncode != 0:
                    raise RuntimeError(f"apt-get install chromium failed:\n{result.stderr[-3000:]}")
    if not CHROMIUM.exists():
        raise RuntimeError(f"chromium was installed but {CHROMIUM} does not exist")
    return CHROMIUM


@contextlib.contextmanager
def open_page(
    *,
    offline: bool = False,
    errors: list[str] | None = None,
    viewport: tuple[int, int] = (1400, 1000),
) -> Iterator:
    """Yield a Playwright page in headless Chromium; everything is closed afterwards.

    ``offline``: every request whose scheme is not local (file, data, blob, about) is aborted
    and recorded in ``errors`` as ``blocked <url>``, so a page that renders fully proves it
    needs no network. ``errors`` (when given) also collects uncaught page exceptions and
    console errors.
    """
    from playwright.sync_api import sync_playwright

    executable = ensure_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable), args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            if offline:

                def route(handle):
                    url = handle.request.url
                    if url.startswith(LOCAL_SCHEMES):
                        handle.continue_()
                    else:
                        if errors is not None:
                            errors.append(f"blocked {url}")
                        handle.abort()

                context.route("**/*", route)
            page = context.new_page()
            if errors is not None:
                page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
                page.on(
                    "console",
                    lambda msg: (
                        errors.append(f"console {msg.type}: {msg.text}")
                        if msg.type == "error"
                        else None
                    ),
                )
            yield page
        finally:
            browser.close()
