"""A widget as what it drew: the static HTML that stands in for a Jupyter widget on the site and
in the static slides.

A page without a kernel cannot run a widget, and the widget manager that draws one from its saved
state would have to come from a CDN. So each widget view is replaced by what the widget showed
when the lesson ran, read from the notebook's saved widget state (``metadata.widgets``, which
nbclient writes after running a notebook): the pictures and text of its Output and Image
widgets, the settings of its controls (``layer: conv2 · image: 0``), a progress bar's last value;
and, when it has controls, a line that says the live widget needs the notebook.
"""

from __future__ import annotations

import html
import re

STATE = "application/vnd.jupyter.widget-state+json"
VIEW = "application/vnd.jupyter.widget-view+json"
TAGS = re.compile(r"<[^>]+>")
CHOICE = ("Dropdown", "Select", "RadioButtons", "ToggleButtons", "SelectionSlider")
VALUE = ("Slider", "Checkbox", "ToggleButton", "Play", "Text", "IntText", "FloatText")


def widget_state(metadata: dict) -> dict:
    """model id -> model, from a notebook's metadata (empty when no state was saved)."""
    return ((metadata.get("widgets") or {}).get(STATE) or {}).get("state") or {}


def _label(state: dict, default: str = "") -> str:
    return (state.get("description") or default).rstrip(": ")


def _walk(model_id: str, models: dict, parts: list, controls: list, seen: set) -> None:
    """Collect what the model ``model_id`` and its children show, depth first, in page order."""
    if model_id in seen or model_id not in models:
        return
    seen.add(model_id)
    model = models[model_id]
    name = model.get("model_name", "").removesuffix("Model")
    state = model.get("state", {})
    for child in state.get("children", []):
        if isinstance(child, str) and child.startswith("IPY_MODEL_"):
            _walk(child.removeprefix("IPY_MODEL_"), models, parts, controls, seen)
    if name == "Output":
        for output in state.get("outputs", []):
            parts.extend(output_html(output))
    elif name == "Image":
        data = next((b["data"] for b in model.get("buffers", []) if b.get("path") == ["value"]), None)
        if data:
            parts.append(f'<img src="data:image/{state.get("format", "png")};base64,{data}" alt="{_label(state, "picture")}">')
    elif name in ("HTML", "Label", "HTMLMath") and TAGS.sub("", state.get("value", "")).strip():
        parts.append(f'<span>{html.escape(html.unescape(TAGS.sub("", state["value"])))}</span>')
    elif name in ("FloatProgress", "IntProgress"):
        parts.append(f'<progress value="{state.get("value", 0)}" max="{state.get("max", 100)}"></progress>')
    elif name.endswith(CHOICE) or name == "SelectMultiple":
        labels, index = state.get("_options_labels", []), state.get("index")
        chosen = [labels[i] for i in (index if isinstance(index, list) else [index])
                  if isinstance(i, int) and i < len(labels)]
        controls.append(f"{_label(state, name)}: {', '.join(chosen) or '–'}")
    elif name.endswith(VALUE):
        controls.append(f"{_label(state, name)}: {state.get('value')}")


def output_html(output: dict) -> list[str]:
    """The HTML of one output inside an Output widget (pictures, text, tables)."""
    kind = output.get("output_type")
    if kind == "stream":
        return [f"<pre>{html.escape(output.get('text', ''))}</pre>"]
    if kind == "error":
        return [f"<pre>{html.escape(output.get('ename', ''))}: {html.escape(output.get('evalue', ''))}</pre>"]
    data = output.get("data", {})
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            return [f'<img src="data:{mime};base64,{"".join(data[mime]).strip()}" alt="{html.escape(data.get("text/plain", "a figure"))}">']
    if "image/svg+xml" in data:
        return ["".join(data["image/svg+xml"])]
    if "text/html" in data:
        return ["".join(data["text/html"])]
    if "text/plain" in data:
        return [f"<pre>{html.escape(''.join(data['text/plain']))}</pre>"]
    return []


def static_widget(model_id: str, models: dict, live_where: str) -> str:
    """The HTML that stands in for the widget view ``model_id``: what it drew, its controls'
    settings, and (when it has controls) ``live_where``, the line that says where it is live."""
    parts, controls = [], []
    _walk(model_id, models, parts, controls, set())
    if not parts and not controls:
        return ('<div class="d2lcnn-static-widget"><p class="d2lcnn-static-note">A widget that was '
                f'not saved when the lesson ran. {live_where}</p></div>')
    lines = ['<div class="d2lcnn-static-widget">']
    if controls:
        lines.append(f'<div class="d2lcnn-static-controls">{html.escape(" · ".join(controls))}</div>')
    lines.extend(parts)
    if controls:
        lines.append(f'<p class="d2lcnn-static-note">{live_where}</p>')
    lines.append("</div>")
    return "\n".join(lines)


def live_where(colab: str, download: str) -> str:
    return ("What this widget drew when the lesson ran for the site, with the settings above. "
            f'Its controls need the running notebook: <a href="{colab}">open the lesson in Colab</a> '
            f'or <a href="{download}" download>download the notebook</a>.')
