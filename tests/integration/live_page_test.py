#!/usr/bin/env python3
"""The live page of `raftkit-counter-demo --web`, driven in a real headless browser.

Starts the web demo (3 real server processes under load) on a free port,
checks that the page's HTTP side refuses what it must (a foreign Host, a POST
without the run's token, a POST from another origin), then opens the page in
headless Chromium (python3-selenium, chromium-driver), finds the leader on
the page, presses its Kill button and requires that within 3 s the page shows
another node as leader and the counter still rising. It then waits for the
measured failover in the timeline, restarts the killed node with its Restart
button, waits for it to show as a follower that caught up, pauses and
resumes a follower with its buttons, saves a screenshot and
stops the demo with SIGTERM (it must exit 0). Every wait polls with a
deadline.

usage: live_page_test.py --demo DEMO --server SERVER --screenshot PNG
Needs Debian's chromium, chromium-driver and python3-selenium
(RAFTKIT_WITH_BROWSER=1 scripts/deps.sh installs them; scripts/test.sh does).
"""
import argparse
import http.client
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.common.exceptions import StaleElementReferenceException
except ImportError:
    sys.exit("live_page_test: python3-selenium is missing (RAFTKIT_WITH_BROWSER=1 scripts/deps.sh installs it)")


def fail(message):
    raise AssertionError(message)


def wait_for(what, predicate, timeout_s, interval_s=0.05):
    """predicate()'s first truthy value, polled until `timeout_s` passes. The
    page redraws its lists as state arrives: an element found and then
    redrawn before it is read is stale, and the poll simply tries again."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = predicate()
        except StaleElementReferenceException:
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            fail(f"not within {timeout_s} s: {what}")
        time.sleep(interval_s)  # polling interval, not synchronisation


class Demo:
    """The web demo process, its output collected line by line."""

    def __init__(self, demo, server):
        self.proc = subprocess.Popen(
            [demo, "--server-binary", server, "--web", "--web-port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self.queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self.queue.put(line)

    def wait_for_url(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self.queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            m = re.search(r"Live page: (http://127\.0\.0\.1:(\d+)/)", line)
            if m:
                return m.group(1), int(m.group(2))
            if self.proc.poll() is not None:
                break
        fail("the demo printed no URL:\n" + "\n".join(self.lines))

    def stop(self, timeout_s):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            fail(f"the demo did not exit within {timeout_s} s of SIGTERM")


def request(port, method, path, headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers)
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def check_http_guards(port):
    """The page's HTTP side: what a foreign site's page could send is refused."""
    host = {"Host": f"127.0.0.1:{port}"}
    status, page = request(port, "GET", "/", host)
    if status != 200:
        fail(f"GET / answered {status}")
    token = re.search(r'const TOKEN = "([0-9a-f]{32})"', page)
    if not token:
        fail("the page holds no token")
    token = token.group(1)
    cases = [
        ("GET /api/state, Host evil.example (DNS rebinding)", "GET", "/api/state",
         {"Host": f"evil.example:{port}"}),
        ("POST kill without the token", "POST", "/api/node/1/kill", host),
        ("POST kill with a wrong token", "POST", "/api/node/1/kill", {**host, "X-Raftkit-Token": "0" * 32}),
        ("POST kill from another origin", "POST", "/api/node/1/kill",
         {**host, "X-Raftkit-Token": token, "Origin": "http://evil.example"}),
        ("GET kill", "GET", "/api/node/1/kill", host),
    ]
    for what, method, path, headers in cases:
        status, body = request(port, method, path, headers)
        if status not in (403, 404, 405):
            fail(f"{what}: answered {status} {body[:200]!r}, expected a refusal")
        print(f"refused as it should be ({status}): {what}")
    status, body = request(port, "POST", "/api/node/9/kill", {**host, "X-Raftkit-Token": token})
    if status != 409:
        fail(f"POST kill of a node that does not exist: {status} {body[:200]!r}")


def browser(profile_dir):
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1140", "--hide-scrollbars", f"--user-data-dir={profile_dir}"):
        options.add_argument(arg)
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(service=service, options=options)


def page_leader(driver):
    """(node id, counter) as the page shows them; node id None when no card says leader."""
    cards = driver.find_elements(By.CSS_SELECTOR, ".node[data-role='leader']")
    return (int(cards[0].get_attribute("id").split("-")[1]) if len(cards) == 1 else None), number(driver, "counter")


def number(driver, element_id):
    text = driver.find_element(By.ID, element_id).text.replace(",", "")
    return int(text) if text.isdigit() else -1


def drive(driver, url):
    driver.get(url)
    old, first = wait_for("the page shows a leader and a counter above 0",
                          lambda: (lambda l: l[0] and l[1] > 0 and l)(page_leader(driver)), 30)
    wait_for("the counter rising", lambda: page_leader(driver)[1] > first, 10)
    if driver.find_element(By.ID, "leader").get_attribute("data-id") != str(old):
        fail("the Leader box and the node cards disagree")
    _, before = page_leader(driver)
    print(f"the page shows node {old} as leader, counter {before}; pressing kill-{old}")
    driver.find_element(By.ID, f"kill-{old}").click()
    t_click = time.monotonic()
    new, at_new = wait_for("another leader shown after the kill",
                           lambda: (lambda l: l[0] not in (None, old) and l)(page_leader(driver)), 3)
    wait_for("the counter rising under the new leader",
             lambda: page_leader(driver)[1] > max(at_new, before), 3 - (time.monotonic() - t_click))
    print(f"node {new} shown as leader and the counter rising ({before} -> {page_leader(driver)[1]}) "
          f"{time.monotonic() - t_click:.2f} s after the click")
    card = driver.find_element(By.ID, f"node-{old}")
    if card.get_attribute("data-state") != "stopped":
        fail(f"the killed node shows state {card.get_attribute('data-state')}")
    entry = wait_for("the timeline's failover entry", lambda: [
        li.text for li in driver.find_elements(By.CSS_SELECTOR, "#timeline li.failover")
        if re.search(f"node {new} leads term \\d+, seen \\d+ ms after node {old} was killed; "
                     "writes resumed after \\d+ ms", li.text)], 10)
    print("timeline:", entry[0])
    if not re.search(r"\d+ ms", driver.find_element(By.ID, "failover").text):
        fail("the Last failover box shows no time")
    # Writes resumed under the new leader, so the counter now exceeds anything
    # the killed node applied: once its own counter passes this value, it has
    # entries from the new leader.
    at_restart = number(driver, "counter")
    driver.find_element(By.ID, f"restart-{old}").click()
    wait_for(f"node {old} back as a follower of node {new}, its counter past {at_restart}",
             lambda: driver.find_element(By.ID, f"node-{old}").get_attribute("data-role") == "follower"
             and number(driver, f"value-{old}") > at_restart
             and number(driver, f"term-{old}") == number(driver, f"term-{new}"), 20)
    print(f"node {old} restarted from the page, shown as a follower that caught up")
    follower = next(i for i in (1, 2, 3) if i != new)
    driver.find_element(By.ID, f"pause-{follower}").click()
    wait_for(f"node {follower} shown paused", lambda: driver.find_element(By.ID, f"node-{follower}")
             .get_attribute("data-state") == "paused", 5)
    driver.find_element(By.ID, f"resume-{follower}").click()
    wait_for(f"node {follower} shown running as a follower again", lambda: (
        lambda card: card.get_attribute("data-state") == "running" and card.get_attribute("data-role") == "follower")(
        driver.find_element(By.ID, f"node-{follower}")), 10)
    print(f"node {follower} paused and resumed from the page")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo", required=True)
    ap.add_argument("--server", required=True)
    ap.add_argument("--screenshot", required=True)
    args = ap.parse_args()
    demo = Demo(args.demo, args.server)
    driver = None
    profile = tempfile.mkdtemp(prefix="raftkit-live-page-")
    try:
        url, port = demo.wait_for_url(60)
        print("demo serving", url)
        check_http_guards(port)
        driver = browser(profile)
        drive(driver, url)
        driver.save_screenshot(args.screenshot)
        print("screenshot:", args.screenshot)
        driver.quit()
        driver = None
        rc = demo.stop(30)
        if rc != 0:
            fail(f"the demo exited with {rc} on SIGTERM")
        print("PASS")
        return 0
    except AssertionError as e:
        print("FAIL:", e)
        print("demo output:\n" + "\n".join(demo.lines[-40:]))
        return 1
    finally:
        if driver is not None:
            driver.quit()
        if demo.proc.poll() is None:
            demo.proc.kill()
            demo.proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
