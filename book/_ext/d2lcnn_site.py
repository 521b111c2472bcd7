"""The course site's own Sphinx extension (loaded by _config.yml's ``local_extensions``).

* Each widget view becomes what the widget drew when the lesson ran (see widget_pictures.py), so
  that no widget manager has to come from a CDN; the saved widget state is not put in the page.
* The Colab install cell is left out; each lesson page starts with its links: open it in Colab, download the notebook.
* Each page loads each script once (Jupyter Book also lists every .js file of the static folders,
  so MathJax came twice, which raises an error), and none of thebe's (launching code in the page is off: it would come from a CDN).
* The finale's bubble chart (the first figure of the comparison lesson's "bubble chart" section)
  is copied to ``_static/finale-chart.png`` for the landing page.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from docutils import nodes

from widget_pictures import VIEW, live_where, static_widget

CHART = "_static/finale-chart.png"


def links(app, docname: str) -> tuple[str, str]:
    """(Colab URL, download URL relative to the page) of the lesson ``docname``."""
    options = app.config.html_theme_options
    repo = options.get("repository_url", "").removeprefix("https://github.com/").strip("/")
    branch = options.get("repository_branch", "main")
    colab = f"https://colab.research.google.com/github/{repo}/blob/{branch}/{docname}.ipynb"
    download = "../" * docname.count("/") + f"_sources/{docname}.ipynb"
    return colab, download


def lesson_page(app, doctree) -> None:
    env, docname = app.env, app.env.docname
    if not env.doc2path(docname).endswith(".ipynb"):
        return
    colab, download = links(app, docname)
    js = getattr(env, "nb_metadata", {}).get(docname, {}).get("js_files", {})
    saved = js.pop("ipywidgets_state", None)            # the page carries pictures, not state
    models = json.loads(saved[1]["body"].replace(r"<\/script>", "</script>"))["state"] if saved else {}
    start = f'<script type="{VIEW}">'
    for raw in list(doctree.findall(nodes.raw)):
        if raw.get("format") == "html" and raw.astext().startswith(start):
            view = json.loads(raw.astext()[len(start):-len("</script>")].replace(r"<\/script>", "</script>"))
            view = json.loads(view) if isinstance(view, str) else view     # myst-nb writes it as a JSON string
            text = static_widget(view["model_id"], models, live_where(colab, download))
            raw.replace_self(nodes.raw("", text, format="html"))

    # The first cell installs d2lcnn on Colab: not part of the lesson a reader reads.
    for cell in doctree.findall(lambda n: isinstance(n, nodes.container) and "cell" in n.get("classes", [])):
        if "d2lcnn @ git+" in cell.astext():
            cell.parent.remove(cell)
        break

    title = next(doctree.findall(nodes.title), None)
    if title is not None:
        line = (f'<p class="d2lcnn-launch"><a href="{colab}">Open in Colab</a> · '
                f'<a href="{download}" download>Download the notebook</a> · '
                f'present it as slides in JupyterLab (<code>make lab</code>, then RISE)</p>')
        title.parent.insert(title.parent.index(title) + 1, nodes.raw("", line, format="html"))

    if docname.endswith("_comparison"):
        sections = [s for s in doctree.findall(nodes.section)
                    if "bubble chart" in s[0].astext().lower()] or [doctree]
        image = next(sections[0].findall(nodes.image), None)
        if image is not None:
            env.d2lcnn_chart = str((Path(app.srcdir) / image["uri"].lstrip("/")).resolve())


def copy_chart(app, exception) -> None:
    chart = getattr(app.env, "d2lcnn_chart", None)
    if exception is None and chart and Path(chart).exists():
        target = Path(app.outdir) / CHART
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(chart, target)


def scripts_once(app, pagename, templatename, context, doctree) -> None:
    seen, kept = set(), []
    for script in context.get("script_files", []):
        attributes = getattr(script, "attributes", {})
        key = str(getattr(script, "filename", script) or "") or attributes.get("body", "")
        if key in seen or "thebe" in key or "THEBE" in key:
            continue
        seen.add(key)
        kept.append(script)
    context["script_files"] = kept


def setup(app):
    # book/build.py sets it to a hash of this folder: changed code re-reads every page (not re-run).
    app.add_config_value("d2lcnn_site_version", "", "env")
    app.connect("doctree-read", lesson_page)
    app.connect("html-page-context", scripts_once, priority=900)
    app.connect("build-finished", copy_chart)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
