#!/usr/bin/env python3
"""preview_site.py DIR: writes the sample site tools/bench/preview_bench.sh serves.

index.html (~60 KB of page markup the way a model writes one: a header, navigation, sections
of prose, cards, a table and a form, with class names and inline attributes), site.css
(~12 KB) and app.js (~20 KB). The text is drawn from a fixed vocabulary with a fixed seed, so
every run serves the same bytes and compresses about as well as real prose does.
"""

import os
import random
import sys

WORDS = """the a of and to in is for on with as by that this from at are be or an it which can your
we our you data project preview run agent model file page snapshot build service request response
server client cache compress header stream event latency throughput user account settings profile
team billing report chart table form button input select option label value status error message
success warning info dashboard overview analytics revenue growth monthly weekly daily quarter year
product feature release update version change history note comment task issue milestone plan goal
design layout color font spacing grid column row card panel modal dialog menu navigation footer
search filter sort export import upload download share invite member role permission access token
quick simple modern clean fast secure reliable scalable flexible powerful friendly responsive
""".split()


def sentence(rng, lo=6, hi=18):
    words = [rng.choice(WORDS) for _ in range(rng.randint(lo, hi))]
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice([".", ".", ".", "!", "?"])


def paragraph(rng):
    return " ".join(sentence(rng) for _ in range(rng.randint(2, 5)))


def index_html(rng, target):
    out = [
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
        "<title>Acme Analytics Dashboard</title>\n<link rel=\"stylesheet\" href=\"site.css\">\n",
        "<script defer src=\"app.js\"></script>\n</head>\n<body class=\"theme-light\">\n",
        "<header class=\"site-header\"><div class=\"container\"><a class=\"brand\" href=\"#\">Acme</a>\n<nav class=\"main-nav\"><ul>\n",
    ]
    for name in ["Overview", "Reports", "Projects", "Team", "Billing", "Settings", "Help"]:
        out.append(f"  <li class=\"nav-item\"><a class=\"nav-link\" href=\"#{name.lower()}\">{name}</a></li>\n")
    out.append("</ul></nav></div></header>\n<main class=\"container\">\n")
    section = 0
    while sum(len(s) for s in out) < target - 2000:
        section += 1
        kind = section % 4
        out.append(f"<section id=\"section-{section}\" class=\"section section-{kind}\">\n")
        out.append(f"  <h2 class=\"section-title\">{sentence(rng, 3, 6)[:-1]}</h2>\n")
        if kind == 0:
            for _ in range(rng.randint(2, 4)):
                out.append(f"  <p class=\"lead\">{paragraph(rng)}</p>\n")
        elif kind == 1:
            out.append("  <div class=\"card-grid\">\n")
            for c in range(rng.randint(3, 6)):
                value = rng.randint(100, 99999)
                delta = rng.uniform(-20, 20)
                out.append(
                    f"    <article class=\"card card-{c % 3}\" data-metric=\"m{section}-{c}\">\n"
                    f"      <h3 class=\"card-title\">{sentence(rng, 2, 4)[:-1]}</h3>\n"
                    f"      <p class=\"card-value\">{value:,}</p>\n"
                    f"      <p class=\"card-delta {'up' if delta >= 0 else 'down'}\">{delta:+.1f}%</p>\n"
                    f"      <p class=\"card-text\">{sentence(rng)}</p>\n"
                    f"      <a class=\"button button-secondary\" href=\"#details-{section}-{c}\">Details</a>\n"
                    "    </article>\n")
            out.append("  </div>\n")
        elif kind == 2:
            out.append("  <table class=\"data-table\">\n    <thead><tr><th>Name</th><th>Owner</th>"
                       "<th>Status</th><th>Updated</th><th>Value</th></tr></thead>\n    <tbody>\n")
            for _ in range(rng.randint(6, 14)):
                status = rng.choice(["Active", "Paused", "Draft", "Archived"])
                out.append(
                    f"      <tr><td>{sentence(rng, 2, 3)[:-1]}</td><td>{rng.choice(WORDS).capitalize()} "
                    f"{rng.choice(WORDS).capitalize()}</td><td><span class=\"badge badge-{status.lower()}\">"
                    f"{status}</span></td><td>2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}</td>"
                    f"<td class=\"num\">{rng.uniform(0, 10000):.2f}</td></tr>\n")
            out.append("    </tbody>\n  </table>\n")
        else:
            out.append(f"  <form class=\"form\" action=\"#\" method=\"post\" id=\"form-{section}\">\n")
            for f in range(rng.randint(2, 5)):
                label = sentence(rng, 2, 3)[:-1]
                out.append(
                    f"    <div class=\"form-row\"><label for=\"f{section}-{f}\">{label}</label>"
                    f"<input id=\"f{section}-{f}\" name=\"f{section}-{f}\" type=\"text\" "
                    f"placeholder=\"{rng.choice(WORDS)} {rng.choice(WORDS)}\"></div>\n")
            out.append("    <button class=\"button button-primary\" type=\"submit\">Save changes</button>\n  </form>\n")
        out.append("</section>\n")
    out.append("</main>\n<footer class=\"site-footer\"><div class=\"container\">"
               f"<p>{paragraph(rng)}</p><p>&copy; 2024 Acme Inc.</p></div></footer>\n</body>\n</html>\n")
    return "".join(out)


def site_css(rng, target):
    out = [":root { --primary: #2563eb; --text: #1f2937; --muted: #6b7280; --radius: 8px; }\n",
           "* { box-sizing: border-box; }\nbody { margin: 0; font-family: system-ui, sans-serif; color: var(--text); }\n"]
    selectors = ["header", "nav", ".card", ".button", ".form-row", ".data-table", ".badge", ".section",
                 ".nav-link", ".card-value", ".card-delta", "footer", "h2", "h3", "p", "input", "label"]
    props = ["margin", "padding", "color", "background", "border", "font-size", "line-height", "display",
             "gap", "border-radius", "box-shadow", "font-weight", "width", "max-width", "transition"]
    values = ["0", "4px", "8px 12px", "1rem", "1.5", "flex", "grid", "var(--primary)", "var(--muted)",
              "#f9fafb", "1px solid #e5e7eb", "var(--radius)", "600", "100%", "1200px", "all .2s ease"]
    while sum(len(s) for s in out) < target:
        sel = rng.choice(selectors)
        if rng.random() < 0.4:
            sel += rng.choice([":hover", " > a", ".active", "-" + rng.choice(WORDS), " .title"])
        body = "; ".join(f"{rng.choice(props)}: {rng.choice(values)}" for _ in range(rng.randint(2, 6)))
        if rng.random() < 0.1:
            out.append(f"@media (max-width: {rng.choice([480, 768, 1024])}px) {{ {sel} {{ {body}; }} }}\n")
        else:
            out.append(f"{sel} {{ {body}; }}\n")
    return "".join(out)


def app_js(rng, target):
    out = ["'use strict';\n(function () {\n"]
    n = 0
    while sum(len(s) for s in out) < target:
        n += 1
        name = rng.choice(WORDS) + rng.choice(WORDS).capitalize() + str(n)
        out.append(
            f"  function {name}(el, options) {{\n"
            f"    const config = Object.assign({{ delay: {rng.randint(0, 500)}, label: '{sentence(rng, 2, 4)}' }}, options || {{}});\n"
            f"    if (!el) {{ return null; }}\n"
            f"    el.addEventListener('{rng.choice(['click', 'input', 'change', 'submit'])}', function (event) {{\n"
            f"      event.preventDefault();\n"
            f"      const value = el.dataset.{rng.choice(WORDS)} || config.label;\n"
            f"      window.setTimeout(function () {{ el.classList.toggle('{rng.choice(WORDS)}'); }}, config.delay);\n"
            f"      return value;\n"
            "    });\n"
            f"    return {{ name: '{name}', config: config }};\n"
            "  }\n"
            f"  document.querySelectorAll('.{rng.choice(WORDS)}').forEach(function (el) {{ {name}(el); }});\n")
    out.append("})();\n")
    return "".join(out)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: preview_site.py DIR")
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(20240601)
    for name, text in [("index.html", index_html(rng, 60_000)), ("site.css", site_css(rng, 12_000)),
                       ("app.js", app_js(rng, 20_000))]:
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
