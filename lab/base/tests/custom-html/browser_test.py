"""Browser tests for custom-html, run after every install (see ci/browser.py)."""


def test_home_page_names_the_app(page, base_url):
    page.goto(base_url + "/")
    assert "Custom HTML" in page.title(), page.title()
    assert page.text_content("#name").strip() == "Custom HTML"


def test_home_page_shows_a_version_and_links_the_records(page, base_url):
    page.goto(base_url + "/")
    assert page.text_content("#version").strip() != ""
    assert "/records" in page.links()


def test_home_page_runs_its_script(page, base_url):
    # Only a real browser engine runs the page's JavaScript; an HTML fetch sees an empty element.
    page.goto(base_url + "/")
    assert page.text_content("#rendered").strip() == "rendered by JavaScript", page.text_content("#rendered")
