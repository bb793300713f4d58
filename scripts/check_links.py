"""Checks every link inside a built HTML site: the page it names exists and, where it names an
anchor, that page has an element with that id. Links that leave the site are not followed.
Usage: python scripts/check_links.py build/docs/html"""
import html.parser
import os
import sys
import urllib.parse


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        for key in ("href", "src"):
            if attrs.get(key):
                self.links.append(attrs[key])


def main(root):
    pages = {}
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if d != "_static"]  # the theme's templates, not pages
        for name in files:
            if name.endswith(".html"):
                path = os.path.join(folder, name)
                page = Page()
                with open(path, encoding="utf-8") as f:
                    page.feed(f.read())
                pages[os.path.normpath(path)] = page
    broken = []
    checked = 0
    for path, page in pages.items():
        for link in page.links:
            url = urllib.parse.urlparse(link)
            if url.scheme or url.netloc or link.startswith("//"):
                continue  # leaves the site
            target = os.path.normpath(os.path.join(os.path.dirname(path), urllib.parse.unquote(url.path))) \
                if url.path else path
            checked += 1
            if not os.path.exists(target):
                broken.append(f"{os.path.relpath(path, root)}: {link} (no {os.path.relpath(target, root)})")
            elif url.fragment and target in pages and url.fragment not in pages[target].ids:
                broken.append(f"{os.path.relpath(path, root)}: {link} (no id {url.fragment!r} there)")
    if not pages:
        sys.exit(f"no HTML pages under {root}")
    for line in broken:
        print("broken link:", line)
    print(f"[docs] {checked} links in {len(pages)} pages checked, {len(broken)} broken")
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main(sys.argv[1])
